"""SC&MP's few SDP buffers: a virtual board drops what would overrun a real one (raw UDP)."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from pyspalloc.transceiver import create_transceiver
from pyspalloc.virtual import VirtualMachine
from pyspalloc.virtual.sdp_buffers import DEFAULT_SDP_BUFFERS, SdpBuffers
from pyspalloc.wire.consts import SCP_PORT
from pyspalloc.wire.scp import SCPCommand, SCPResponse, SCPResult, scp_request
from tests.virtual.helpers import start_vm

SDRAM = 0x60240000


def _burst(vm: VirtualMachine, ip: str, count: int, *, hold_loop: bool = True) -> set[int]:
    """Send ``count`` CMD_VER requests back to back; return the sequences answered.

    With ``hold_loop`` the board's event loop is kept busy while they are sent, so they
    all wait in its socket together, as a burst waits at a real board's Ethernet.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        datagrams = [
            scp_request(0, 0, 0, SCPCommand.VER, sequence=seq).to_bytes()
            for seq in range(1, count + 1)
        ]
        started = threading.Event()
        if hold_loop:

            def busy() -> None:
                started.set()
                time.sleep(0.2)

            vm.loop.call_soon_threadsafe(busy)
            assert started.wait(5)
        for datagram in datagrams:
            sock.sendto(datagram, (ip, SCP_PORT))
        answered: set[int] = set()
        try:
            while True:
                reply = SCPResponse.from_bytes(sock.recvfrom(4096)[0])
                assert reply.result == SCPResult.RC_OK
                answered.add(reply.sequence)
        except TimeoutError:
            pass
        return answered


def test_a_burst_beyond_the_buffers_is_dropped() -> None:
    # SC&MP slow enough that none of the burst is handled before it has all arrived
    with start_vm("spin5", booted=True, sdp_service_s=1.0) as vm:
        board = next(iter(vm.boards.values()))
        answered = _burst(vm, board.ip, 32)
        assert answered == set(range(1, DEFAULT_SDP_BUFFERS + 1))  # the first 8, in order
        assert board.sdp.dropped == 32 - DEFAULT_SDP_BUFFERS
        time.sleep(0.1)
        assert len(_burst(vm, board.ip, 4)) == 4  # buffers free again


def test_default_pace_drops_a_burst_of_32_but_not_one_of_8() -> None:
    with start_vm("spin5", booted=True) as vm:
        board = next(iter(vm.boards.values()))
        assert len(_burst(vm, board.ip, 8)) == 8
        answered = _burst(vm, board.ip, 32)
        assert DEFAULT_SDP_BUFFERS <= len(answered) < 32
        assert board.sdp.dropped == 32 - len(answered)


def test_no_limit_when_disabled() -> None:
    with start_vm("spin5", booted=True, sdp_buffers=0, sdp_service_s=0.05) as vm:
        board = next(iter(vm.boards.values()))
        assert len(_burst(vm, board.ip, 32)) == 32
        assert board.sdp.dropped == 0


def test_a_sender_waiting_for_replies_never_loses_one() -> None:
    """Eight in flight, topped up as replies come: nothing dropped even at a slow pace."""
    with start_vm("spin5", booted=True, sdp_service_s=0.05) as vm:
        board = next(iter(vm.boards.values()))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            sent = 0
            for seq in range(1, 9):
                sock.sendto(scp_request(0, 0, 0, 0, sequence=seq).to_bytes(), (board.ip, SCP_PORT))
                sent += 1
            answered = 0
            while answered < 64:
                sock.recvfrom(4096)
                answered += 1
                if sent < 64:
                    sent += 1
                    request = scp_request(0, 0, 0, 0, sequence=sent)
                    sock.sendto(request.to_bytes(), (board.ip, SCP_PORT))
        assert board.sdp.dropped == 0


@pytest.mark.parametrize("window", [1, 8])
def test_transceiver_within_the_limit_loses_nothing(window: int) -> None:
    """No data lost; drops only when a stall makes the engine resend (a few at most)."""
    with start_vm("spin5", booted=True) as vm:
        board = next(iter(vm.boards.values()))
        data = os.urandom(256 * 1024)
        with create_transceiver(board.ip, timeout=0.5, window=window) as txrx:
            txrx.write_memory(1, 1, SDRAM, data)
            assert txrx.read_memory(1, 1, SDRAM, len(data)) == data
            assert txrx.get_machine_details().n_chips == 48
        requests = 2 * len(data) // 256 + 2 * 48
        if window == 1:
            assert board.sdp.dropped == 0
        else:
            assert board.sdp.dropped <= requests // 50


def test_a_window_of_32_overruns_the_board_but_gets_there() -> None:
    """32 requests at once overrun SC&MP's 8 buffers; the resends still get there.

    SC&MP here takes 2 ms a message, so that the 32 arrive together even from a sender
    slowed by a loaded machine (at the real 50 us a slow sender may not overrun it).
    """
    with start_vm("spin5", booted=True, sdp_service_s=0.002) as vm:
        board = next(iter(vm.boards.values()))
        data = os.urandom(16 * 1024)
        with create_transceiver(board.ip, timeout=0.5, window=32) as txrx:
            txrx.write_memory(1, 1, SDRAM, data)
            assert txrx.read_memory(1, 1, SDRAM, len(data)) == data
        assert board.sdp.dropped > 0  # what would overrun a real board overruns this one


def test_model_frees_buffers_when_replies_leave() -> None:
    buffers = SdpBuffers(2, 1.0)
    assert buffers.admit(0.0) == 1.0
    assert buffers.admit(0.0) == 2.0
    assert buffers.admit(0.1) is None  # both held: SC&MP has not finished either
    buffers.sent(0.2)  # but both replies have left: the sender may send again
    assert buffers.admit(0.3) == 1.3  # and SC&MP, having answered all, is idle
    assert buffers.dropped == 1


@pytest.mark.parametrize("window", [8, 32])
def test_a_board_far_away_is_overrun_by_a_wide_window(window: int) -> None:
    """20 ms to the board: 32 requests arrive there together and overrun it; 8 do not."""
    with start_vm("spin5", booted=True, latency_ms=20.0) as vm:
        board = next(iter(vm.boards.values()))
        data = os.urandom(32 * 1024)
        with create_transceiver(board.ip, timeout=0.5, window=window) as txrx:
            txrx.write_memory(1, 1, SDRAM, data)
            assert txrx.read_memory(1, 1, SDRAM, len(data)) == data
        requests = 2 * len(data) // 256
        if window == 8:  # only when a reply comes just after its resend timer (RTT ~ RTO)
            assert board.sdp.dropped <= requests // 10
        else:  # about a third of all requests
            assert board.sdp.dropped >= requests // 8
