"""Shared fixtures: free ports, database URLs (SQLite, and PostgreSQL when configured),
and a running service on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.addresses import free_port

POSTGRES_ENV = "PYSPALLOC_TEST_POSTGRES_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres-url",
        default=os.environ.get(POSTGRES_ENV),
        help=f"PostgreSQL URL for store/service tests (default: ${POSTGRES_ENV})",
    )


@pytest.fixture
def port() -> int:
    """A free loopback TCP port."""
    return free_port()


def _postgres_schema(base_url: str) -> tuple[str, Callable[[], None]]:
    """Create a fresh schema; return a URL that uses it and a function dropping it."""
    from sqlalchemy import create_engine, text

    schema = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

    return url, drop


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, and a fresh PostgreSQL schema when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
        return
    base = request.config.getoption("--postgres-url")
    if not base:
        pytest.skip(f"{POSTGRES_ENV} not set")
    url, drop = _postgres_schema(base)
    try:
        yield url
    finally:
        drop()


#: users made by the ``service`` fixture: name -> (password, trust)
USERS = {
    "alice": ("alice-pw-1", "USER"),
    "bob": ("bob-pw-2", "USER"),
    "root": ("root-pw-3", "ADMIN"),
    "rita": ("rita-pw-4", "READER"),
}


_HASHES: dict[str, str] = {}


@pytest.fixture
def make_service(tmp_path: Path, db_url: str) -> Iterator[Callable[..., Any]]:
    """Start services on ``db_url`` with an instant power controller; all stopped at the end.

    Call it with ServiceConfig field overrides; it returns the RunningService.
    """
    from pyspalloc.server.auth import hash_password
    from pyspalloc.server.config import ServiceConfig
    from pyspalloc.server.controller import InstantMachineController
    from pyspalloc.server.runner import start_service
    from pyspalloc.server.store import Store, TrustLevel

    store = Store(db_url)
    if not store.count_users():
        for name, (password, trust) in USERS.items():
            if name not in _HASHES:  # argon2 is deliberately slow: hash once per run
                _HASHES[name] = hash_password(password)
            store.create_user(name, _HASHES[name], TrustLevel[trust])
    store.close()
    running: list[Any] = []

    def make(**overrides: Any) -> Any:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "data_dir": tmp_path / "data",
            "database": db_url,
            "machines": ["spin24"],
            "controller": "instant",
            "create_admin": False,
            "allocator_period": 0.5,
        }
        settings.update(overrides)
        controller = settings.pop("instant_controller", None) or InstantMachineController()
        service = start_service(ServiceConfig(**settings), controller=controller)
        service.controller = controller
        running.append(service)
        return service

    yield make
    for service in running:
        service.stop()


@pytest.fixture
def service(make_service: Callable[..., Any]) -> Any:
    """A running service (spin24, instant power) with users alice, bob and admin root."""
    return make_service()
