"""SDRAM and router allocation, routing tables, applications and core-state counts."""

from __future__ import annotations

import struct

from pyspalloc.wire.scp import SCPResult
from tests.virtual.helpers import ScpClient, chip_info

ALLOC, RTR, COUNT, AR, NNP, APP_COPY_RUN, SIG = 28, 29, 15, 19, 20, 21, 22
IDLE, READY, RUNNING, FINISHED = 15, 5, 7, 11


def _board(make_vm):
    vm = make_vm(booted=True)
    return next(iter(vm.boards.values()))


def _count(scp: ScpClient, app_id: int, state: int) -> int:
    return scp.ok(0, 0, 0, COUNT, app_id, state).args(1)[0]


def test_sdram_alloc_with_tag_retry(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        arg1 = (4 << 16) | (17 << 8)  # TAG_RETRY, app 17, op 0
        first = scp.ok(1, 1, 0, ALLOC, arg1, 1000, 3).args(1)[0]
        assert first == 0x60240018
        assert scp.ok(1, 1, 0, ALLOC, arg1, 1000, 3).args(1)[0] == first  # a resend
        assert scp.ok(1, 1, 0, ALLOC, arg1, 1004, 3).args(1)[0] == 0  # tag held
        assert scp.ok(1, 1, 0, ALLOC, 17 << 8, 1000, 3).args(1)[0] == 0  # no retry flag
        second = scp.ok(1, 1, 0, ALLOC, arg1, 10, 0).args(1)[0]
        assert second == first + 1000 + 8
        assert scp.ok(1, 1, 0, ALLOC, (17 << 8) | 7, 3).args(1)[0] == first
        free, largest = scp.ok(1, 1, 0, ALLOC, 6).args(2)
        assert largest == 123469792 - 1008 - 20 and free == largest
        assert chip_info(scp, 1, 1)["sdram"] == largest
        assert scp.ok(1, 1, 0, ALLOC, (17 << 8) | 2).args(1)[0] == 2
        assert scp.ok(1, 1, 0, ALLOC, 6).args(2)[1] == 123469792
        assert scp.ok(1, 1, 0, ALLOC, arg1, 200 * 1024 * 1024, 0).args(1)[0] == 0
        assert scp.request(1, 1, 0, ALLOC, 8).result == SCPResult.RC_ARG


def test_router_alloc_load_and_copy(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        base = scp.ok(0, 0, 0, ALLOC, (5 << 8) | 3, 2).args(1)[0]
        assert base == 1
        table = struct.pack("<2H3I", 0, 0, 0x41, 0x1000, 0xFFFF0000)
        table += struct.pack("<2H3I", 1, 0, 0x82, 0x2000, 0xFFFF0000) + b"\xff" * 16
        scp.write(0, 0, 0x67800000, table)
        scp.ok(0, 0, 0, RTR, (2 << 16) | (5 << 8) | 2, 0x67800000, base)
        pointer = scp.word(0, 0, 0xF5007FD4)
        records = scp.read(0, 0, pointer, 64)
        assert struct.unpack_from("<2H3I", records, 16) == (0, 0x8005, 0x41, 0x1000, 0xFFFF0000)
        assert struct.unpack_from("<2H3I", records, 32)[2:] == (0x82, 0x2000, 0xFFFF0000)
        assert struct.unpack_from("<2H3I", records, 48)[2] >= 0xFF000000
        assert chip_info(scp, 0, 0)["router"] == 1021
        scp.ok(0, 0, 0, RTR, 3, 0x12345)
        assert scp.ok(0, 0, 0, RTR, 3, 0x80000000).args(1)[0] == 0x12345
        scp.ok(0, 0, 0, RTR, 0)
        assert struct.unpack_from("<2H3I", scp.read(0, 0, pointer, 32), 16)[2] >= 0xFF000000
        assert chip_info(scp, 0, 0)["router"] == 1023


def test_applications_and_counts(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        assert _count(scp, 0, IDLE) == 48 * 17
        mask = (1 << 1) | (1 << 2) | (1 << 3)
        scp.ok(0, 0, 0, AR, (30 << 24) | (1 << 18) | mask)
        assert _count(scp, 30, READY) == 3
        assert scp.request(0, 0, 0, AR, (30 << 24) | 1).result == SCPResult.RC_ARG
        # APP_COPY_RUN on (1, 0) from its parent (0, 0) over link 3 (west).
        binary = bytes(range(64))
        scp.write(0, 0, 0x67800000, binary)
        total = sum(struct.unpack("<16I", binary)) & 0xFFFFFFFF
        arg1 = ((total & 0x1FFFFFFF) << 3) | 3
        scp.ok(1, 0, 0, APP_COPY_RUN, arg1, 64, (30 << 24) | (1 << 18) | mask)
        assert scp.read(1, 0, 0x67800000, 64) == binary
        bad = scp.request(1, 1, 0, APP_COPY_RUN, (1 << 3) | 4, 64, 30 << 24 | mask)
        assert bad.result == SCPResult.RC_SUM
        assert _count(scp, 30, READY) == 6
        scp.ok(255, 255, 0, SIG, 0, (3 << 16) | (0xFF << 8) | 30, 0xFFFF)  # START
        assert _count(scp, 30, RUNNING) == 6
        assert scp.request(1, 1, 0, SIG, 0, 30, 0xFFFF).result == SCPResult.RC_ARG
        assert scp.request(255, 255, 0, SIG, 1, 30, 0xFFFF).result == SCPResult.RC_ARG
        scp.ok(255, 255, 0, SIG, 0, (8 << 16) | (0xFF << 8) | 30, 0xFFFF)  # EXIT
        assert _count(scp, 30, FINISHED) == 6
        cores = scp.read(0, 0, 0xE5007000 + 128, 128)
        assert (cores[46], cores[47]) == (FINISHED, 30)
        scp.ok(1, 0, 0, ALLOC, (4 << 16) | (30 << 8), 100, 1)
        scp.ok(255, 255, 0, NNP, 0x003F0000, 0x5002FF00 | 30, 0x80003F00)  # stop app 30
        assert _count(scp, 30, FINISHED) == 0
        assert _count(scp, 0, IDLE) == 48 * 17
        assert scp.ok(1, 0, 0, ALLOC, 6).args(2)[1] == 123469792


def test_test_hooks(make_vm) -> None:
    board = _board(make_vm)
    board.write_memory(2, 2, 0x60000000, b"hook")
    with ScpClient(board.ip) as scp:
        assert scp.read(2, 2, 0x70000000, 4) == b"hook"
        scp.write(3, 3, 0x60000010, b"back")
        board.set_core_state(3, 3, 4, FINISHED, 9)
        assert _count(scp, 9, FINISHED) == 1
    assert board.read_memory(3, 3, 0x60000010, 4) == b"back"
    assert board.read_memory(0, 0, 0xF5007F02, 2) == b"\x08\x08"
    for bad in ((9, 9, 0x60000000, 4), (0, 0, 0x10000000, 4)):
        try:
            board.read_memory(*bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} should fail")
