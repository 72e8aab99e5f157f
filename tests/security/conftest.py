"""Fixtures of the security tests: each test runs an attack against a live service.

The service fixtures are the reliability suite's (a service driving a virtual machine over
UDP, or ``pyspalloc serve`` in a subprocess); helpers live in ``tests.reliability.support``.
"""

from __future__ import annotations

from tests.reliability.conftest import db_url, machine, vservice

__all__ = ["db_url", "machine", "vservice"]
