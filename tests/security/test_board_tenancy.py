"""Board I/O must not outlive its job: a job's memory and router operations and proxy
channels stop when the job ends, before its board is powered off and handed to the next
user's job.

Each run: alice holds board (0, 0, 0) and bob's job is queued for the same board; alice
starts a 24 MiB ``memory`` write (or read) and destroys her job while it runs; bob's job
gets the board. No byte may cross from alice to bob (write) or from bob to alice (read).
The virtual board's memory is read directly as the oracle.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from pyspalloc.geometry import BOARD_CHIP_SET
from pyspalloc.transceiver.router import FILTER_BASE
from pyspalloc.wire.proxy import OpenReply, OpenRequest
from tests.reliability.support import open_ws, recv_frame, udp_socket_count
from tests.support.http_client import Http, login
from tests.support.waiting import wait_for

ADDRESS = 0x60000000
SIZE = 24 * 1024 * 1024
BOARD = {"x": 0, "y": 0, "z": 0}
RUNS = 5
OCTETS = {"Content-Type": "application/octet-stream"}


def _board_ip(client: Http, url: str) -> str:
    connections = client.get(url + "/machine").json()["connections"]
    return str(connections[0][1])


def _ready(client: Http, url: str, timeout: float = 60.0) -> None:
    wait_for(lambda: client.state(url) == "READY", timeout, 0.1)


def _queue_bob_behind_alice(alice: Http, bob: Http) -> tuple[str, str]:
    url_a, _ = alice.ready_job(60.0, board=BOARD)
    created = bob.create(board=BOARD)
    assert created.status_code == 201, created.text
    url_b = created.headers["location"]
    assert bob.state(url_b) == "QUEUED"
    return url_a, url_b


class _Call(threading.Thread):
    """One REST call in the background; ``status`` and ``content`` once done."""

    def __init__(self, client: Http, method: str, url: str, **kw: Any) -> None:
        super().__init__(daemon=True)
        self.args = (client, method, url, kw)
        self.status: int | None = None
        self.content = b""

    def run(self) -> None:
        client, method, url, kw = self.args
        response = client.http.request(
            method, url, headers={**client.csrf, **kw.pop("headers", {})}, timeout=300, **kw
        )
        self.status = response.status_code
        self.content = response.content


def _end_run(bob: Http, url_b: str) -> None:
    assert bob.delete(url_b).status_code == 204


def test_memory_write_racing_destroy_reaches_no_next_owner(vservice: Any, machine: Any) -> None:
    _, vm = machine
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    crossed: list[int] = []
    statuses: list[int | None] = []
    for _ in range(RUNS):
        url_a, url_b = _queue_bob_behind_alice(alice, bob)
        board = vm.board_by_ip(_board_ip(alice, url_a))
        write = _Call(
            alice,
            "POST",
            url_a + "/memory",
            params={"x": 0, "y": 0, "address": ADDRESS},
            data=b"\xa5" * SIZE,
            headers=OCTETS,
        )
        write.start()
        wait_for(lambda b=board: b.read_memory(0, 0, ADDRESS, 4) == b"\xa5" * 4, 60.0, 0.02)
        assert alice.delete(url_a).status_code == 204
        _ready(bob, url_b)
        write.join(300)
        assert not write.is_alive()
        assert bob.get(url_b + "/machine").json()["boards"] == [[0, 0, 0]]
        crossed.append(board.read_memory(0, 0, ADDRESS, SIZE).count(0xA5))
        statuses.append(write.status)
        _end_run(bob, url_b)
    assert crossed == [0] * RUNS, f"bytes of alice's write on bob's board: {crossed}"
    assert statuses == [500] * RUNS  # each write was cut off by the destroy


def test_memory_read_racing_destroy_returns_nothing_of_next_owner(
    vservice: Any, machine: Any
) -> None:
    _, vm = machine
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    crossed: list[int] = []
    statuses: list[int | None] = []
    for _ in range(RUNS):
        url_a, url_b = _queue_bob_behind_alice(alice, bob)
        board = vm.board_by_ip(_board_ip(alice, url_a))
        read = _Call(
            alice,
            "GET",
            url_a + "/memory",
            params={"x": 0, "y": 0, "address": ADDRESS, "size": SIZE},
        )
        read.start()
        time.sleep(1.0)  # the read is under way (24 MiB take far longer)
        assert read.is_alive()
        assert alice.delete(url_a).status_code == 204
        _ready(bob, url_b)
        board.write_memory(0, 0, ADDRESS, b"\x5a" * SIZE)  # bob's data on bob's board
        read.join(300)
        assert not read.is_alive()
        crossed.append(read.content.count(0x5A) if read.status == 200 else 0)
        statuses.append(read.status)
        _end_run(bob, url_b)
    assert crossed == [0] * RUNS, f"bytes of bob's board in alice's read: {crossed}"
    assert statuses == [500] * RUNS  # each read was cut off by the destroy


def test_operation_on_a_destroyed_job_stops_at_once(vservice: Any, machine: Any) -> None:
    """The write is cut off when the job ends (it does not run on to the end)."""
    alice = login(vservice, "alice")
    url, _ = alice.ready_job(60.0, board=BOARD)
    _, vm = machine
    board = vm.board_by_ip(_board_ip(alice, url))
    write = _Call(
        alice,
        "POST",
        url + "/memory",
        params={"x": 0, "y": 0, "address": ADDRESS},
        data=b"\xa5" * SIZE,
        headers=OCTETS,
    )
    write.start()
    wait_for(lambda: board.read_memory(0, 0, ADDRESS, 4) == b"\xa5" * 4, 60.0, 0.02)
    destroyed = time.monotonic()
    assert alice.delete(url).status_code == 204
    write.join(15)
    assert not write.is_alive(), "the write went on after its job was destroyed"
    assert time.monotonic() - destroyed < 5.0
    assert write.status == 500 and b"not active" in write.content, write.content
    refused = alice.get(url + "/memory", params={"x": 0, "y": 0, "address": ADDRESS, "size": 4})
    assert refused.status_code == 500


def test_proxy_channels_close_when_the_job_ends(vservice: Any, machine: Any) -> None:
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    url_a, url_b = _queue_bob_behind_alice(alice, bob)
    baseline = udp_socket_count()
    proxy = alice.get(url_a).json()["proxy-ref"]
    ws = open_ws(alice, proxy)
    for corr in range(1, 5):
        ws.send(OpenRequest(corr, 0, 0, 17893).to_bytes())
        assert isinstance(recv_frame(ws), OpenReply)
    assert udp_socket_count() >= baseline + 4
    assert alice.delete(url_a).status_code == 204
    with pytest.raises(ConnectionClosed):
        for _ in range(100):
            ws.recv(timeout=10)
    closed_at = ws.close_reason
    assert closed_at is not None and "destroyed" in closed_at
    _ready(bob, url_b)
    wait_for(lambda: udp_socket_count() <= baseline, 10.0)
    ws.close()
    _end_run(bob, url_b)


def _filters_set(board: Any, word: bytes) -> int:
    """How many chips of ``board`` hold ``word`` as a router diagnostic filter."""
    found = 0
    for chip in BOARD_CHIP_SET:
        try:
            filters = board.read_memory(chip.x, chip.y, FILTER_BASE, 4 * 16)
        except ValueError:  # a chip nothing was written to since power-on
            continue
        found += word in filters
    return found


def test_router_reset_racing_destroy_reaches_no_next_owner(vservice: Any, machine: Any) -> None:
    _, vm = machine
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    word = 0xA5A5A5A5
    crossed: list[int] = []
    for _ in range(RUNS):
        url_a, url_b = _queue_bob_behind_alice(alice, bob)
        board = vm.board_by_ip(_board_ip(alice, url_a))
        reset = _Call(alice, "DELETE", url_a + "/router", params={str(i): word for i in range(16)})
        reset.start()
        wait_for(lambda b=board: _filters_set(b, word.to_bytes(4, "little")) > 0, 60.0, 0.005)
        assert alice.delete(url_a).status_code == 204
        _ready(bob, url_b)
        reset.join(300)
        assert not reset.is_alive()
        crossed.append(_filters_set(board, word.to_bytes(4, "little")))
        _end_run(bob, url_b)
    assert crossed == [0] * RUNS, f"chips of bob's board with alice's router filters: {crossed}"
