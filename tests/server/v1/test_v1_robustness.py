"""Bad input and slow clients on the v1 listener: clear exceptions or a closed
connection, bounded buffers, and every other client served meanwhile."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.server.v1.conftest import LineClient
from tests.support.waiting import wait_for


def _exception(found: dict[str, Any] | None) -> str:
    assert found is not None and "exception" in found, found
    return str(found["exception"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json", "not a line of JSON"),
        (b"\xff\xfe", "not a line of JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"args": []}', "no command name"),
        (b'{"command": 7}', "no command name"),
        (b'{"command": "version", "args": {}}', "args must be a JSON array"),
        (b'{"command": "version", "kwargs": []}', "kwargs must be a JSON object"),
        (b'{"command": "no_such_command"}', "unknown command"),
        (b'{"command": "version", "args": [1]}', "positional arguments"),
        (b'{"command": "get_job_state", "args": ["x"]}', "job_id must be an integer"),
        (b'{"command": "get_job_state", "args": [true]}', "job_id must be an integer"),
        (b'{"command": "get_job_state", "args": [1e300]}', "job_id must be 0 to"),
        (b'{"command": "get_job_state", "args": [1.5]}', "job_id must be an integer"),
        (b'{"command": "get_job_state", "args": [99999999999]}', "job_id must be 0 to"),
        (b'{"command": "get_job_state"}', "missing required argument"),
        (b'{"command": "get_job_state", "kwargs": {"job": 1}}', "unexpected keyword"),
        (b'{"command": "notify_job", "args": [[1]]}', "job_id must be an integer"),
        (b'{"command": "get_board_position", "args": ["spin24", 0, 0, "z"]}', "z must be"),
        (b'{"command": "where_is", "args": [1]}', "keyword arguments only"),
        (b'{"command": "version", "args": [' + b"1," * 10 + b"1]}", "too many arguments"),
        (b"[" * 100000, "too long"),
    ],
)
def test_bad_requests_get_an_exception_and_the_connection_stays(
    client: LineClient, line: bytes, message: str
) -> None:
    client.send_raw(line + b"\n")
    assert message in _exception(client.reply())
    if b"[[[" not in line:  # an over-long line closes the connection instead
        assert client.call("version") == "5.0.0"


def test_deeply_nested_json_is_refused(client: LineClient) -> None:
    client.send_raw(b'{"command": "version", "args": ' + b"[" * 30000 + b"]" * 30000 + b"}\n")
    assert "not a line of JSON" in _exception(client.reply())
    assert client.call("version") == "5.0.0"


def test_over_long_line_is_refused_and_closed(client: LineClient) -> None:
    client.send_raw(b'{"command": "version", "junk": "' + b"x" * 70000)
    assert "too long" in _exception(client.reply())
    assert client.closed()


def test_pipelined_requests_are_answered_in_order(client: LineClient) -> None:
    lines = b"".join(
        json.dumps({"command": c, "args": a}).encode() + b"\n"
        for c, a in [("version", []), ("get_job_state", [5]), ("list_jobs", []), ("x", [])] * 10
    )
    client.send_raw(lines)
    for _ in range(10):
        assert client.reply() == {"return": "5.0.0"}
        assert client.reply()["return"]["state"] == 0  # type: ignore[index]
        assert client.reply() == {"return": []}
        assert "unknown command" in _exception(client.reply())


def test_unfinished_line_times_out_others_served(make_v1: Callable[..., Any]) -> None:
    service = make_v1(v1={"line_timeout": 0.5})
    port = service.app.state.v1.port
    stuck, other = LineClient(port), LineClient(port)
    try:
        stuck.send_raw(b'{"command": "vers')
        started = time.monotonic()
        assert other.call("version") == "5.0.0"
        assert "not finished" in _exception(stuck.reply())
        assert stuck.closed()
        assert time.monotonic() - started < 10
        assert other.call("list_machines")[0]["name"] == "spin24"
    finally:
        stuck.close()
        other.close()


def test_idle_connection_without_a_partial_line_stays(make_v1: Callable[..., Any]) -> None:
    service = make_v1(v1={"line_timeout": 0.3})
    client = LineClient(service.app.state.v1.port)
    try:
        assert client.call("version") == "5.0.0"
        time.sleep(1.0)  # a watcher waits for notifications for a long time
        assert client.call("version") == "5.0.0"
    finally:
        client.close()


def test_client_that_never_reads_is_dropped_others_served(
    make_v1: Callable[..., Any],
) -> None:
    service = make_v1(
        v1={"max_unread": 8192, "write_timeout": 1.0, "max_pending_lines": 4, "socket_buffer": 8192}
    )
    port = service.app.state.v1.port
    other = LineClient(port)
    job = other.call("create_job", 4, 2, owner="a")  # the whole machine: 24 connections
    other.wait_ready(job)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", port))
    slow.setblocking(False)
    request = json.dumps({"command": "list_jobs"}).encode() + b"\n"
    sent = 0
    dropped = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and not dropped:
            try:
                sent += slow.send(request * 64)
            except BlockingIOError:  # the service stopped reading: it waits for us
                time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
            assert other.call("version") == "5.0.0"
        assert dropped, f"still connected after sending {sent} bytes"
        assert sent < 50_000_000
        wait_for(lambda: service.app.state.v1.connections == 1, 10)
        assert other.call("get_job_state", job)["state"] == 3
    finally:
        slow.close()
        other.close()


def test_watcher_that_never_reads_notifications_is_dropped(
    make_v1: Callable[..., Any],
) -> None:
    service = make_v1(v1={"max_unread": 1024, "socket_buffer": 4096})
    port = service.app.state.v1.port
    watcher = socket.socket()
    watcher.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    watcher.connect(("127.0.0.1", port))
    watcher.sendall(b'{"command": "notify_job", "args": [null]}\n')
    worker = LineClient(port)
    try:
        wait_for(lambda: service.app.state.v1.connections == 2, 10)
        deadline = time.monotonic() + 120
        while service.app.state.v1.connections > 1 and time.monotonic() < deadline:
            ids = [worker.call("create_job", owner="a") for _ in range(10)]
            for job in ids:
                worker.call("destroy_job", job)
        assert service.app.state.v1.connections == 1  # the watcher was dropped
        assert worker.call("version") == "5.0.0"
    finally:
        watcher.close()
        worker.close()


def test_only_allowed_networks_connect(make_v1: Callable[..., Any]) -> None:
    service = make_v1(v1={"allow": ("10.0.0.0/8",)})
    client = LineClient(service.app.state.v1.port)
    try:
        client.send_raw(b'{"command": "version"}\n')
    except OSError:
        pass
    assert client.closed()
    client.close()


def test_connections_per_host_are_limited(make_v1: Callable[..., Any]) -> None:
    service = make_v1(v1={"max_connections_per_host": 2})
    port = service.app.state.v1.port
    first, second, third = LineClient(port), LineClient(port), LineClient(port)
    try:
        assert first.call("version") == second.call("version") == "5.0.0"
        assert third.closed()
        first.close()
        wait_for(lambda: service.app.state.v1.connections == 1, 10)
        fourth = LineClient(port)
        assert fourth.call("version") == "5.0.0"
        fourth.close()
    finally:
        for c in (first, second, third):
            c.close()


def test_watches_per_connection_are_bounded(client: LineClient) -> None:
    from pyspalloc.server.v1.notifications import MAX_WATCHES

    lines = b"".join(
        b'{"command": "notify_job", "args": [%d]}\n' % n for n in range(MAX_WATCHES + 1)
    )
    client.send_raw(lines)
    replies = [client.reply() for _ in range(MAX_WATCHES + 1)]
    assert all(r == {"return": None} for r in replies[:MAX_WATCHES])
    assert "at most" in _exception(replies[-1])
    assert client.call("notify_job") is None  # everything: allowed
    assert client.call("no_notify_job") is None
    assert client.call("notify_job", 1) is None  # the single watches were reset
