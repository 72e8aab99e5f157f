"""Helpers of the service tests: a logged-in REST client, job state, the 10 s wait.

The service tests run with instant power control, so a job settles in well under
``SERVICE_WAIT`` seconds; their HTTP calls allow ``SERVICE_TIMEOUT`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tests.support import http_client, waiting
from tests.support.http_client import Http

SERVICE_TIMEOUT = 40.0
SERVICE_WAIT = 10.0
T = TypeVar("T")


def login(service: Any, name: str) -> Http:
    """A client of ``service`` logged in as ``name`` (a user of the ``service`` fixture)."""
    return http_client.login(service, name, SERVICE_TIMEOUT)


def state(client: Http, url: str) -> str:
    """The state of the job at ``url``."""
    body: dict[str, Any] = client.get(url).json()
    return str(body["state"])


def wait_for(check: Callable[[], T | None], timeout: float = SERVICE_WAIT) -> T:
    """:func:`tests.support.waiting.wait_for` with the service tests' default bound."""
    return waiting.wait_for(check, timeout)
