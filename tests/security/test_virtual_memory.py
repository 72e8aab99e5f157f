"""Attacks through a virtual board on the service that runs the virtual machine.

``pyspalloc serve --machine virtual:spin24`` runs the machine in a child process. A
tenant's SCP FILL of a chip's whole 128 MiB SDRAM, sent through the proxy, used to grow
the service itself by 128 MiB per packet (the machine shared its process, and memory was
stored in pages). Now a fill is one run in the child, and the child dies with the service.
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyspalloc.client import SpallocClient
from pyspalloc.client.proxy.connections import SpallocSCPConnection
from pyspalloc.wire.scp import SCPCommand, SCPResult, scp_request
from tests.reliability.serve_process import (
    VirtualServeProcess,
    make_users,
    process_alive,
    rss_mb,
)
from tests.support.http_client import PASSWORDS, Http
from tests.support.waiting import wait_for

SDRAM = 0x60000000
SDRAM_SIZE = 128 * 1024 * 1024
WORD = 0xDEADBEEF
#: chips of board (0, 0) filled, each with all its SDRAM, in each of ``ROUNDS`` rounds
CHIPS = ((0, 0), (1, 0), (0, 1), (1, 1))
ROUNDS = 3
#: seconds the attack lasts at least (so that the bystander is measured throughout)
ATTACK_S = 3.0
START_TIMEOUT = 120.0


@pytest.fixture
def serve(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[VirtualServeProcess]:
    """``pyspalloc serve --machine virtual:spin24 --controller bmp`` on SQLite (more
    arguments from indirect parametrisation)."""
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    process = VirtualServeProcess(tmp_path / "data", database)
    try:
        process.start(*getattr(request, "param", ()), timeout=START_TIMEOUT)
        yield process
    finally:
        process.stop()


def _call(
    connection: SpallocSCPConnection,
    x: int,
    y: int,
    command: int,
    *args: int,
    seq: int,
    data: bytes = b"",
) -> tuple[SCPResult, bytes]:
    connection.send_scp_request(scp_request(x, y, 0, command, *args, data=data, sequence=seq))
    while True:
        result, sequence, reply, _ = connection.receive_scp_response(60.0)
        if sequence == seq:
            return result, bytes(reply)


def _scp(
    connection: SpallocSCPConnection, x: int, y: int, command: int, *args: int, seq: int
) -> bytes:
    result, reply = _call(connection, x, y, command, *args, seq=seq)
    assert result == SCPResult.RC_OK, result
    return reply


def test_fill_attack_through_the_proxy_costs_the_service_nothing(
    serve: VirtualServeProcess,
) -> None:
    bob = Http(serve.url)
    assert bob.login("bob").status_code == 302
    latencies: list[float] = []
    done = threading.Event()

    def bystander() -> None:
        while not done.is_set():
            start = time.monotonic()
            response = bob.get("machines")
            latencies.append(time.monotonic() - start)
            assert response.status_code == 200
            time.sleep(0.05)

    with SpallocClient(serve.url, "alice", PASSWORDS["alice"]) as client:
        job = client.create_job(1)
        job.wait_until_ready(timeout=90)
        connection = job.connect_to_board(0, 0)
        try:
            _scp(connection, 0, 0, SCPCommand.VER, seq=1)  # warm: channel open, board booted
            before = rss_mb(serve.pid)
            children = serve.child_pids()
            children_before = sum(rss_mb(child) for child in children)
            watcher = threading.Thread(target=bystander, daemon=True)
            watcher.start()
            seq, fills, started = 2, 0, time.monotonic()
            try:
                # every chip in turn, at least ROUNDS times and for at least ATTACK_S
                while fills < ROUNDS * len(CHIPS) or time.monotonic() - started < ATTACK_S:
                    x, y = CHIPS[fills % len(CHIPS)]
                    _scp(connection, x, y, SCPCommand.FILL, SDRAM, WORD, SDRAM_SIZE, seq=seq)
                    seq, fills = seq + 1, fills + 1
            finally:
                done.set()
                watcher.join(15)
            grown = rss_mb(serve.pid) - before
            children_grown = sum(rss_mb(child) for child in children) - children_before
            x, y = CHIPS[-1]
            reply = _scp(connection, x, y, SCPCommand.READ, SDRAM + SDRAM_SIZE - 4, 4, 0, seq=seq)
        finally:
            connection.close()
            job.destroy("attack over")
    print(
        f"{fills} FILLs of 128 MiB in {time.monotonic() - started:.1f} s: service "
        f"+{grown:.1f} MB, virtual machine +{children_grown:.1f} MB, bystander max "
        f"{max(latencies):.3f} s over {len(latencies)} requests"
    )
    assert reply[-4:] == struct.pack("<I", WORD)  # the fills happened
    assert grown < 100, f"the service grew by {grown:.0f} MB"
    assert len(children) == 1, "the virtual machine is not a child process"
    assert children_grown < 100, f"the virtual machine grew by {children_grown:.0f} MB"
    assert len(latencies) >= 5 and max(latencies) < 1.0, latencies


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_virtual_machine_outlives_the_service(serve: VirtualServeProcess, how: str) -> None:
    (child,) = serve.child_pids()
    assert process_alive(child)
    if how == "SIGKILL":
        serve.kill9()
    else:
        os.kill(serve.pid, signal.SIGTERM)
        assert serve.proc is not None
        serve.proc.wait(30)
    started = time.monotonic()
    wait_for(lambda: not process_alive(child), timeout=15)
    print(f"{how}: the virtual machine process ended {time.monotonic() - started:.2f} s later")


@pytest.mark.parametrize("serve", [("--virtual-memory-mib", "1")], indirect=True)
def test_writes_beyond_the_budget_get_rc_buf_and_the_board_keeps_answering(
    serve: VirtualServeProcess,
) -> None:
    with SpallocClient(serve.url, "alice", PASSWORDS["alice"]) as client:
        job = client.create_job(1)
        job.wait_until_ready(timeout=90)
        connection = job.connect_to_board(0, 0)
        try:
            results: list[SCPResult] = []
            for page in range(300):  # one 4 KiB page each; 256 fit in 1 MiB
                address = SDRAM + page * 4096
                result, _ = _call(
                    connection,
                    0,
                    0,
                    SCPCommand.WRITE,
                    address,
                    256,
                    0,
                    seq=page + 1,
                    data=b"w" * 256,
                )
                results.append(result)
            first_refused = results.index(SCPResult.RC_BUF)
            back = _scp(connection, 0, 0, SCPCommand.READ, SDRAM, 4, 0, seq=1000)
        finally:
            connection.close()
            job.destroy("test over")
    print(f"1 MiB budget: writes 1..{first_refused} RC_OK, the other {300 - first_refused} RC_BUF")
    assert 200 < first_refused <= 256, first_refused
    assert set(results[:first_refused]) == {SCPResult.RC_OK}
    assert set(results[first_refused:]) == {SCPResult.RC_BUF}
    assert back[-4:] == b"wwww"
