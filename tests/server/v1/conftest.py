"""Fixtures for the v1 listener tests: a live service with the listener on, and a
line client on a real socket."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyspalloc.server.v1 import V1Options

V1_USER = "oldtools"


class LineClient:
    """A v1 client on a real socket: one JSON line out, one JSON line back."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 20.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.notifications: list[dict[str, Any]] = []

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> dict[str, Any] | None:
        """The next line as JSON; None if the server closed the connection."""
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        found: dict[str, Any] = json.loads(line)
        return found

    def reply(self) -> dict[str, Any] | None:
        """The next return/exception line (notifications are kept aside)."""
        while True:
            line = self.read_line()
            if line is None or "return" in line or "exception" in line:
                return line
            self.notifications.append(line)

    def call_raw(self, command: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        message = {"command": command, "args": list(args), "kwargs": kwargs}
        self.send_raw(json.dumps(message).encode() + b"\n")
        return self.reply()

    def call(self, command: str, *args: Any, **kwargs: Any) -> Any:
        """The ``return`` value; fails the test on an exception line."""
        found = self.call_raw(command, *args, **kwargs)
        assert found is not None, f"{command}: connection closed"
        assert "return" in found, found
        return found["return"]

    def closed(self, timeout: float = 10.0) -> bool:
        """Whether the server closes the connection (reading and dropping lines)."""
        self.sock.settimeout(timeout)
        try:
            while self.read_line() is not None:
                pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return True

    def wait_ready(self, job_id: int, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state: dict[str, Any] = self.call("get_job_state", job_id)
            if state["state"] == 3:
                return state
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} not READY within {timeout} s")


@pytest.fixture
def make_v1(make_service: Callable[..., Any]) -> Callable[..., Any]:
    """Start a service (spin24, instant power) with the v1 listener; returns it.

    Keyword ``v1`` gives V1Options overrides; the rest go to ServiceConfig.
    """

    def make(v1: dict[str, Any] | None = None, **overrides: Any) -> Any:
        options = V1Options(port=0, user=V1_USER, **(v1 or {}))
        return make_service(v1=options, **overrides)

    return make


@pytest.fixture
def v1_service(make_v1: Callable[..., Any]) -> Any:
    return make_v1()


@pytest.fixture
def connect(v1_service: Any) -> Iterator[Callable[[], LineClient]]:
    """Open line clients to ``v1_service``; all closed at the end."""
    opened: list[LineClient] = []

    def open_client() -> LineClient:
        client = LineClient(v1_service.app.state.v1.port)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture
def client(connect: Callable[[], LineClient]) -> LineClient:
    return connect()
