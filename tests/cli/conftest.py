"""Fixtures for the command-line tests: a clean environment and a CLI runner bound to a
running service (the ``service`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import USERS

ENV_NAMES = (
    "SPALLOC_SERVER",
    "SPALLOC_USER",
    "SPALLOC_PASSWORD",
    "SPALLOC_TOKEN",
    "SPALLOC_MACHINE",
)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the commands do not care which database the service uses."""
    return f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SPALLOC_* variables and no config file unless a test sets them."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYSPALLOC_CONFIG", str(tmp_path / "no-such-config.ini"))
    monkeypatch.setenv("COLUMNS", "200")
    yield


class Cli:
    """Runs ``pyspalloc`` sub-commands in-process against one service."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(
        self, *args: str, user: str | None = "alice", password: str | None = None
    ) -> Result:
        from pyspalloc.cli.main import main

        env: dict[str, str | None] = {"SPALLOC_SERVER": self.url}
        if user is not None:
            env["SPALLOC_USER"] = user
            env["SPALLOC_PASSWORD"] = password if password is not None else USERS[user][0]
        return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)

    def json(self, *args: str, user: str | None = "alice", code: int = 0) -> Any:
        """Run with ``--json``, check the exit code and parse standard output."""
        result = self(*args, "--json", user=user)
        assert result.exit_code == code, (result.exit_code, result.output)
        return json.loads(result.stdout)


@pytest.fixture
def cli(service: Any) -> Cli:
    """A CLI runner logged in to a fresh service (spin24, instant power) as alice."""
    return Cli(service.url)


@pytest.fixture
def client_for(service: Any) -> Iterator[Callable[[str], Any]]:
    """Make logged-in clients of the service (closed at the end)."""
    from pyspalloc import SpallocClient

    made: list[Any] = []

    def make(user: str = "alice") -> Any:
        client = SpallocClient(service.url, user, USERS[user][0])
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def one_line_error(result: Result) -> str:
    """Check a failure printed exactly one line on standard error, without a traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]
