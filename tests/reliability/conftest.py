"""Fixtures of the reliability tests: a service driving a virtual machine over UDP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import virtual_machines


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Reliability tests run on SQLite only (the store tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"


machine = virtual_machines.machine
vservice = virtual_machines.vservice
