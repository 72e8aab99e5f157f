"""File descriptors: one tenant must not exhaust the service's sockets through the proxy.

Channels per websocket, websockets per job and per user, and channels overall are capped,
each refused with a clear ERROR frame or close reason, and a bystander's request is
answered within 1 s throughout.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from pyspalloc.server.bmp_control import BMPMachineController
from pyspalloc.wire.proxy import ErrorReply, OpenReply, OpenRequest
from tests.reliability.serve_process import ServeProcess, make_users
from tests.reliability.support import fd_count, open_ws, recv_frame
from tests.support.http_client import Http, login
from tests.support.virtual_machines import FAST_BMP

ATTEMPTS = 200


def _service(make_service: Any, machine: Any, **overrides: Any) -> Any:
    definition, _ = machine
    return make_service(
        virtual_address_base=next(iter(definition.bmp_ips.values())),
        instant_controller=BMPMachineController(FAST_BMP),
        **overrides,
    )


def _open_channels(ws: ClientConnection, count: int) -> tuple[int, list[str]]:
    """Ask for ``count`` channels (pipelined); return how many opened and the errors."""
    for corr in range(1, count + 1):
        ws.send(OpenRequest(corr, 0, 0, 17893).to_bytes())
    opened, errors = 0, []
    for _ in range(count):
        frame = recv_frame(ws)
        if isinstance(frame, OpenReply):
            opened += 1
        else:
            assert isinstance(frame, ErrorReply), frame
            errors.append(frame.message)
    return opened, errors


class _Bystander(threading.Thread):
    """Bob asks for the service root over and over; records the slowest answer."""

    def __init__(self, service: Any) -> None:
        super().__init__(daemon=True)
        self.client = login(service, "bob")
        self.stop = threading.Event()
        self.slowest = 0.0
        self.answers = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                status = self.client.http.get(self.client.srv, timeout=5).status_code
            except requests.RequestException as error:
                self.failures.append(repr(error))
                continue
            self.slowest = max(self.slowest, time.monotonic() - start)
            self.answers += 1
            if status != 200:
                self.failures.append(str(status))
            time.sleep(0.05)

    def __enter__(self) -> _Bystander:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.join(10)
        assert self.failures == []
        assert self.answers > 0
        assert self.slowest < 1.0, f"a bystander waited {self.slowest:.2f} s"


def _proxy(client: Http) -> str:
    url, _ = client.ready_job(60.0, **{"num-boards": 1})
    return str(client.get(url).json()["proxy-ref"])


def _refused(ws: ClientConnection) -> str:
    try:
        ws.recv(timeout=10)
    except ConnectionClosed:
        assert ws.close_code == 1008, ws.close_code
        return str(ws.close_reason)
    raise AssertionError("the websocket was accepted")


def test_channels_per_websocket_are_capped(make_service: Any, machine: Any) -> None:
    service = _service(make_service, machine)
    alice = login(service, "alice")
    proxy = _proxy(alice)
    before = fd_count()
    with _Bystander(service):
        ws = open_ws(alice, proxy)
        opened, errors = _open_channels(ws, ATTEMPTS)
        grown = fd_count() - before
        assert opened == 64
        assert len(errors) == ATTEMPTS - 64
        assert all("too many channels on this websocket (at most 64)" in e for e in errors)
        assert grown < 64 + 20, grown
        ws.close()


def test_websockets_per_job_and_per_user_are_capped(make_service: Any, machine: Any) -> None:
    service = _service(make_service, machine)
    alice = login(service, "alice")
    proxies = [_proxy(alice) for _ in range(5)]
    kept: list[ClientConnection] = []
    with _Bystander(service):
        for _ in range(8):
            kept.append(open_ws(alice, proxies[0]))
        reason = _refused(open_ws(alice, proxies[0]))
        assert reason == "too many proxy websockets for this job (at most 8)"
        for proxy in proxies[1:]:
            for _ in range(8):
                if len(kept) == 32:
                    break
                kept.append(open_ws(alice, proxy))
        assert len(kept) == 32
        reason = _refused(open_ws(alice, proxies[4]))
        assert reason == "too many proxy websockets for this user (at most 32)"
        for ws in kept[:4]:
            ws.close()
        time.sleep(0.5)
        again = open_ws(alice, proxies[4])  # room again once some closed
        _open_channels(again, 1)
        again.close()
    for ws in kept[4:]:
        ws.close()


def test_channels_per_user_and_of_the_whole_service_are_capped(
    make_service: Any, machine: Any
) -> None:
    service = _service(
        make_service, machine, proxy_max_channels_per_user=100, proxy_max_channels_total=150
    )
    alice, bob = login(service, "alice"), login(service, "bob")
    before = fd_count()
    with _Bystander(service):
        first = open_ws(alice, _proxy(alice))
        second = open_ws(alice, _proxy(alice))
        assert _open_channels(first, 64)[0] == 64
        opened, errors = _open_channels(second, 64)
        assert opened == 36
        assert errors == ["too many channels for this user (at most 100)"] * 28
        theirs = open_ws(bob, _proxy(bob))  # alice's limit leaves room for bob
        opened, errors = _open_channels(theirs, 64)
        assert opened == 50
        assert errors == ["the service has too many open channels (at most 150)"] * 14
        assert fd_count() - before < 150 + 30
        first.close()
        deadline = time.monotonic() + 5
        got = 0
        while got == 0 and time.monotonic() < deadline:
            got = _open_channels(theirs, 1)[0]
        assert got == 1  # the closed websocket's channels were given back
        theirs.close()
        second.close()


def test_serve_proxy_limit_option(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    serve = ServeProcess(tmp_path / "data", database)
    serve.start("--proxy-limit", "channels=3", "--proxy-limit", "websockets-per-job=1")
    try:
        alice = Http(serve.url)
        assert alice.login("alice").status_code == 302
        proxy = _proxy(alice)
        ws = open_ws(alice, proxy)
        opened, errors = _open_channels(ws, 5)
        assert opened == 3
        assert errors == ["too many channels on this websocket (at most 3)"] * 2
        assert _refused(open_ws(alice, proxy)).endswith("for this job (at most 1)")
        ws.close()
    finally:
        serve.stop()
    bad = ServeProcess(tmp_path / "data", database)
    with pytest.raises(RuntimeError, match="--proxy-limit"):
        bad.start("--proxy-limit", "sockets=3")
