"""Faults: a websocket dropped mid-transfer, a board that stops answering, 5% packet loss,
and a BMP that fails a power command once. Every wait is bounded: the job ends READY or
the call fails with a clear error, never hangs."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from pyspalloc.geometry import MachineDefinition
from pyspalloc.server.bmp_control import BMPControlOptions, BMPMachineController
from pyspalloc.transceiver.boot import boot_image
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.proxy import Message, OpenReply, OpenRequest
from pyspalloc.wire.scp import SCPResult
from tests.reliability.support import SCP_PORT, open_ws, recv_frame, udp_socket_count, ver_request
from tests.support.http_client import login
from tests.support.waiting import wait_for

ADDRESS = 0x60000000
# the service boots jobs' boards with our synthetic image (boots virtual boards only)
SHORT = BMPControlOptions(
    retry_delay=0.05, power_timeout=1.0, boot_timeout=3.0, boot_image=boot_image()
)


def _memory_round_trip(alice: Any, url: str, size: int, timeout: float) -> tuple[int, bytes]:
    data = os.urandom(size)
    params = {"x": 0, "y": 0, "address": ADDRESS}
    started = time.monotonic()
    posted = alice.post(
        url + "/memory", params=params, data=data,
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert time.monotonic() - started < timeout
    if posted.status_code != 202:
        return posted.status_code, posted.content
    got = alice.get(url + "/memory", params={**params, "size": size})
    assert time.monotonic() - started < timeout
    assert got.status_code != 200 or got.content == data
    return got.status_code, got.content


def test_websocket_dropped_mid_transfer(vservice: Any) -> None:
    alice = login(vservice, "alice")
    url, job = alice.ready_job(**{"num-boards": 1})
    before = udp_socket_count()
    for attempt in range(3):
        ws = open_ws(alice, job["proxy-ref"])
        ws.send(OpenRequest(attempt, 0, 0, SCP_PORT).to_bytes())
        reply = recv_frame(ws)
        assert isinstance(reply, OpenReply)
        for sequence in range(200):  # a burst in flight, replies unread
            ws.send(Message(reply.channel_id, ver_request(sequence)).to_bytes())
        ws.socket.shutdown(socket.SHUT_RDWR)  # the TCP connection dies, no close frame
        ws.socket.close()
    wait_for(lambda: udp_socket_count() == before, 15, 0.1)
    assert alice.state(url) == "READY"
    with open_ws(alice, job["proxy-ref"]) as ws:
        ws.send(OpenRequest(9, 0, 0, SCP_PORT).to_bytes())
        reply = recv_frame(ws)
        assert isinstance(reply, OpenReply)
        ws.send(Message(reply.channel_id, ver_request(4242)).to_bytes())
        frame = recv_frame(ws)
        assert isinstance(frame, Message)


@pytest.fixture
def short_service(
    make_service: Callable[..., Any], machine: tuple[MachineDefinition, VirtualMachine]
) -> Any:
    definition, _ = machine
    base = next(iter(definition.bmp_ips.values()))
    return make_service(
        virtual_address_base=base, instant_controller=BMPMachineController(SHORT),
        allocator_period=0.5,
    )  # fmt: skip


def test_boards_that_never_answer_then_recover(
    short_service: Any, machine: tuple[MachineDefinition, VirtualMachine]
) -> None:
    _, vm = machine
    for board in vm.boards.values():
        board.set_fault(loss=1.0)
    alice = login(short_service, "alice")
    created = alice.create(**{"num-boards": 1})
    assert created.status_code == 201
    url = created.headers["location"]
    seen = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen.add(alice.state(url))
        time.sleep(0.2)
    assert "READY" not in seen  # it cannot boot a silent board
    assert seen <= {"QUEUED", "POWER"}, seen
    for board in vm.boards.values():
        board.set_fault()
    wait_for(lambda: alice.state(url) == "READY", 40, 0.2)
    status, _ = _memory_round_trip(alice, url, 4096, 30)
    assert status == 200


def test_board_powered_off_under_a_ready_job_fails_clearly(
    short_service: Any, machine: tuple[MachineDefinition, VirtualMachine]
) -> None:
    _, vm = machine
    alice = login(short_service, "alice")
    url, _ = alice.ready_job(**{"num-boards": 1})
    ip = alice.get(url + "/machine").json()["connections"][0][1]
    board = vm.board_by_ip(ip)
    assert board is not None
    board.power_off()
    started = time.monotonic()
    status, body = _memory_round_trip(alice, url, 1024, 60)
    assert status >= 400, status
    assert body, "an error must say what went wrong"
    assert time.monotonic() - started < 60
    assert alice.state(url) == "READY"  # the job is still there to be destroyed
    assert alice.delete(url, params={"reason": "board died"}).status_code == 204


@pytest.mark.slow
def test_five_percent_packet_loss(
    short_service: Any, machine: tuple[MachineDefinition, VirtualMachine]
) -> None:
    _, vm = machine
    for board in vm.boards.values():
        board.set_fault(loss=0.05)
    alice = login(short_service, "alice")
    url, _ = alice.ready_job(timeout=60, **{"num-boards": 3})
    for _ in range(3):
        status, _ = _memory_round_trip(alice, url, 20_000, 60)
        assert status == 200


@pytest.mark.parametrize("how", ["error reply", "no reply"])
def test_bmp_fails_a_power_command_once(
    how: str, short_service: Any, machine: tuple[MachineDefinition, VirtualMachine]
) -> None:
    _, vm = machine
    failed: list[int] = []
    for bmp in vm.bmps.values():
        real = bmp._power

        def flaky(request: Any, sender: Any, bmp: Any = bmp, real: Any = real) -> None:
            if not failed:
                failed.append(request.arg2)
                if how == "error reply":
                    bmp._reply(request, SCPResult.RC_ARG, b"", sender)
                return
            real(request, sender)

        bmp._power = flaky
    alice = login(short_service, "alice")
    url, _ = alice.ready_job(timeout=60, **{"num-boards": 1})
    assert len(failed) == 1
    status, _ = _memory_round_trip(alice, url, 1024, 30)
    assert status == 200
