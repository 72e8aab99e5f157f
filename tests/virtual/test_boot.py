"""Boot protocol, silence before boot, VER, power."""

from __future__ import annotations

import socket
import time

import pytest

from pyspalloc.wire.scp import SCPResult
from tests.virtual.helpers import ScpClient, send_boot


def _ver_xy(scp: ScpClient) -> tuple[int, int, bytes]:
    payload = scp.ok(255, 255, 0, 0).payload
    return payload[3], payload[2], payload[12:]


def test_silent_before_boot_then_boots_on_packets(make_vm) -> None:
    vm = make_vm(powered=True)
    board = next(iter(vm.boards.values()))
    with ScpClient(board.ip, timeout=0.3) as scp:
        with pytest.raises(socket.timeout):
            scp.request(255, 255, 0, 0)
        send_boot(board.ip)
        deadline = time.monotonic() + 5
        while not board.booted and time.monotonic() < deadline:
            time.sleep(0.01)
        x, y, text = _ver_xy(scp)
    assert (x, y) == (0, 0)
    assert text == b"SC&MP/SpiNNaker\0" + b"4.0.0\0"


def test_missing_block_means_no_boot(make_vm) -> None:
    vm = make_vm(powered=True)
    board = next(iter(vm.boards.values()))
    send_boot(board.ip, skip=3)
    time.sleep(0.2)
    assert not board.booted
    with ScpClient(board.ip, timeout=0.2) as scp, pytest.raises(socket.timeout):
        scp.request(255, 255, 0, 0)


def test_unpowered_board_ignores_boot(make_vm) -> None:
    vm = make_vm()
    board = next(iter(vm.boards.values()))
    send_boot(board.ip)
    time.sleep(0.2)
    assert not board.powered and not board.booted


def test_netinit_answers_255_first(make_vm) -> None:
    vm = make_vm(powered=True, netinit=0.5)
    board = next(iter(vm.boards.values()))
    board.boot_here()
    with ScpClient(board.ip) as scp:
        assert _ver_xy(scp)[:2] == (255, 255)
        time.sleep(0.6)
        assert _ver_xy(scp)[:2] == (0, 0)


def test_booted_option_and_version_on_cores(make_vm) -> None:
    vm = make_vm(booted=True)
    board = next(iter(vm.boards.values()))
    assert board.powered and board.booted
    with ScpClient(board.ip) as scp:
        sark = scp.ok(2, 3, 5, 0).payload
        assert sark[0] == 5 and (sark[3], sark[2]) == (2, 3)
        assert sark[12:] == b"SARK/SpiNNaker\0" + b"4.0.0\0"
        assert scp.request(0, 0, 18, 0).result == SCPResult.RC_CPU
        assert scp.request(9, 9, 0, 0).result == SCPResult.RC_ROUTE
        assert scp.request(0, 0, 0, 99).result == SCPResult.RC_CMD
