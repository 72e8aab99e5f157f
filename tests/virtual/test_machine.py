"""Multi-board machines: BMP power and FPGA links, boot flooding, triads, P2P service."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from pyspalloc.geometry import (
    BOARD_CHIPS,
    CHIP_LINK_DELTAS,
    FPGA_BANK_STRIDE,
    FPGA_STOP_REGISTER,
    Direction,
    Triad,
    fpga_for,
)
from pyspalloc.wire.scp import SCPResult
from tests.virtual.helpers import ScpClient, chip_info, p2p_chips, send_boot

POWER, LINK_READ, LINK_WRITE = 57, 17, 18


def _bmp(vm) -> ScpClient:
    return ScpClient(next(iter(vm.bmps.values())).ip, timeout=1.0)


def _wait_booted(board, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not board.booted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert board.booted


def test_bmp_version_power_and_memory_reset(make_vm) -> None:
    vm = make_vm("spin24")
    board = vm.boards[Triad(0, 0, 1)]
    number = board.definition.physical.board
    with _bmp(vm) as bmp:
        version = bmp.ok(0, 0, number, 0).payload
        assert version[12:].split(b"\0")[0] == b"BC&MP/Spin5-BMP"
        assert version[12:].split(b"\0")[1].startswith(b"2.")
        bmp.ok(0, 0, 0, POWER, 1, 1 << number)
        assert board.powered and not board.booted
        board.boot_here()
        with ScpClient(board.ip, timeout=0.3) as scp:
            scp.write(0, 0, 0x60000000, b"data")
            bmp.ok(0, 0, 0, POWER, 0, 1 << number)
            with pytest.raises(socket.timeout):
                scp.request(0, 0, 0, 0)
            bmp.ok(0, 0, 0, POWER, 1, 1 << number)
            with pytest.raises(socket.timeout):
                scp.request(0, 0, 0, 0)  # powered, not booted: still silent
            send_boot(board.ip)
            _wait_booted(board)
            assert scp.read(0, 0, 0x60000000, 4) == bytes(4)
        assert bmp.request(0, 0, 0, 99).result == SCPResult.RC_CMD


def _stop_all_links(bmp: ScpClient, number: int, value: int = 1) -> None:
    for direction in Direction:
        fpga, bank = fpga_for(direction)
        address = bank * FPGA_BANK_STRIDE + FPGA_STOP_REGISTER
        bmp.ok(0, 0, number, LINK_WRITE, address, 4, fpga, data=struct.pack("<I", value))


def test_fpga_registers_and_isolation(make_vm) -> None:
    vm = make_vm("spin24", powered=True)
    lonely = vm.boards[Triad(0, 0, 1)]
    number = lonely.definition.physical.board
    with _bmp(vm) as bmp:
        for fpga in range(3):
            flag = bmp.ok(0, 0, number, LINK_READ, 0x40004, 4, fpga).args(1)[0]
            assert flag & 3 == fpga
        _stop_all_links(bmp, number)
        fpga, bank = fpga_for(Direction.NORTH)
        stop = bank * FPGA_BANK_STRIDE + FPGA_STOP_REGISTER
        assert bmp.ok(0, 0, number, LINK_READ, stop, 4, fpga).args(1)[0] == 1
    root = vm.boards[Triad(0, 0, 0)]
    send_boot(root.ip)
    _wait_booted(root)
    assert not lonely.booted
    assert all(b.booted for b in vm.boards.values() if b is not lonely)
    with ScpClient(root.ip) as scp:
        assert scp.read(255, 255, 0xF5007F02, 2) == bytes([24, 48])  # spans the torus: wraps
        chips = p2p_chips(scp, 48, 24)
    assert len(chips) == 23 * 48
    with ScpClient(lonely.ip, timeout=0.2) as scp, pytest.raises(socket.timeout):
        scp.request(255, 255, 0, 0)


def test_triad_boots_as_one_16x16_machine(make_vm) -> None:
    vm = make_vm("spin24")
    triad = [vm.boards[Triad(0, 0, z)] for z in range(3)]
    with _bmp(vm) as bmp:
        mask = sum(1 << b.definition.physical.board for b in triad)
        bmp.ok(0, 0, 0, POWER, 1, mask)
    send_boot(triad[0].ip)
    _wait_booted(triad[0])
    assert all(b.booted for b in triad)
    assert sum(b.booted for b in vm.boards.values()) == 3
    expected = {(ex + c.x, ey + c.y) for ex, ey in ((0, 0), (8, 4), (4, 8)) for c in BOARD_CHIPS}
    with ScpClient(triad[0].ip) as scp:
        assert scp.read(255, 255, 0xF5007F02, 2) == bytes([16, 16])
        assert p2p_chips(scp, 16, 16) == expected
        infos = {chip: chip_info(scp, *chip) for chip in sorted(expected)}
    for (x, y), info in infos.items():
        assert info["source"] == (x, y)
        for link, (dx, dy) in enumerate(CHIP_LINK_DELTAS):
            there = (x + dx, y + dy)
            assert bool(info["links"] & (1 << link)) == (there in expected)
        if (x, y) != (0, 0):
            parent = info["parent"]
            dx, dy = CHIP_LINK_DELTAS[parent]
            assert (x + dx, y + dy) in expected
    assert infos[(8, 4)]["ip"] == triad[1].ip and infos[(8, 4)]["ethernet"] == 1
    assert infos[(4, 8)]["ip"] == triad[2].ip and infos[(9, 5)]["eth"] == (8, 4)
    # Any Ethernet chip serves any chip; replies come from the receiving board.
    with ScpClient(triad[2].ip) as scp:
        scp.write(9, 5, 0x60000000, b"p2p!")
        assert scp.read(255, 255, 0xF5007F00, 2) == bytes([0, 0])
        assert scp.read(8, 4, 0xF5007FF0, 4) == triad[1].ip_bytes
        reply = scp.ok(9, 5, 0, 2, 0x60000000, 4, 0)
        assert (reply.header.src_x, reply.header.src_y) == (9, 5) and reply.payload == b"p2p!"
    with ScpClient(triad[1].ip) as scp:
        assert scp.read(9, 5, 0x70000000, 4) == b"p2p!"
        assert scp.read(255, 255, 0xF5007FF0, 4) == triad[0].ip_bytes


def test_whole_machine_booted_is_a_torus(make_vm) -> None:
    vm = make_vm("spin24", booted=True)
    root = vm.boards[Triad(0, 0, 0)]
    machine = root.machine
    assert machine is not None and all(b.machine is machine for b in vm.boards.values())
    assert (machine.width, machine.height, machine.wrap_x, machine.wrap_y) == (48, 24, True, True)
    assert len(machine.chips) == 24 * 48
    assert all(bits == 0x3F for bits in machine.links.values())
    # Every chip's parent chain reaches the root.
    for chip in list(machine.chips)[::37]:
        steps = 0
        while chip != (0, 0):
            dx, dy = CHIP_LINK_DELTAS[machine.parent[chip]]
            chip = ((chip[0] + dx) % 48, (chip[1] + dy) % 24)
            steps += 1
            assert steps < 100
    other = vm.boards[Triad(2, 1, 2)]
    ex, ey = machine.eth[other.triad]
    with ScpClient(other.ip) as scp:
        info = chip_info(scp, (ex + 3) % 48, (ey + 2) % 24)
        assert info["eth"] == (ex, ey)


def test_booting_a_non_root_board_relabels_chips(make_vm) -> None:
    vm = make_vm("spin24")
    board = vm.boards[Triad(1, 1, 1)]
    board.power_on()
    board.boot_here()
    with ScpClient(board.ip) as scp:
        assert scp.read(255, 255, 0xF5007F00, 4) == bytes([0, 0, 8, 8])
        assert len(p2p_chips(scp, 8, 8)) == 48
        assert chip_info(scp, 7, 7)["eth"] == (0, 0)


@pytest.mark.parametrize(
    ("triads", "size", "wrap"),
    [
        ([(0, 0), (1, 0), (2, 0)], (40, 16), (False, False)),
        ([(0, 0), (1, 0), (2, 0), (3, 0)], (48, 16), (True, False)),
        ([(1, 1), (2, 1)], (28, 16), (False, False)),
        ([(3, 0), (3, 1)], (16, 24), (False, True)),
    ],
)
def test_job_shaped_boots(make_vm, triads, size, wrap) -> None:
    vm = make_vm("spin24")
    boards = [vm.boards[Triad(x, y, z)] for x, y in triads for z in range(3)]
    for board in boards:
        board.power_on()
    boards[0].boot_here()
    machine = boards[0].machine
    assert machine is not None and all(b.machine is machine for b in boards)
    assert (machine.width, machine.height) == size
    assert (machine.wrap_x, machine.wrap_y) == wrap
    assert len(machine.chips) == 48 * len(boards)
    with ScpClient(boards[-1].ip) as scp:
        assert scp.read(255, 255, 0xF5007F02, 2) == bytes([size[1], size[0]])
        assert len(p2p_chips(scp, *size)) == 48 * len(boards)
