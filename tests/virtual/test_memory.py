"""Memory regions, aliases, SV/VCPU structures, CMD_INFO and error codes."""

from __future__ import annotations

import struct

from pyspalloc.wire.scp import SCPResult
from tests.virtual.helpers import ScpClient, chip_info


def _board(make_vm):
    vm = make_vm(booted=True)
    return next(iter(vm.boards.values()))


def test_read_write_and_alias_folding(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        scp.write(1, 2, 0x60001000, b"abcd" * 64)
        assert scp.read(1, 2, 0x70001000, 256) == b"abcd" * 64
        assert scp.read(1, 2, 0x60000FFE, 8) == b"\0\0abcdab"
        assert scp.read(2, 1, 0x60001000, 4) == bytes(4)  # other chip untouched
        scp.write(0, 0, 0xF5000100, b"\x01\x02\x03\x04")
        assert scp.read(0, 0, 0xE5000100, 4) == b"\x01\x02\x03\x04"
        # A write spanning two SDRAM pages.
        scp.write(0, 0, 0x60000F80, bytes(range(256)))
        assert scp.read(0, 0, 0x70000F80, 256) == bytes(range(256))
        assert scp.request(0, 0, 0, 2, 0x10000000, 4).result == SCPResult.RC_ARG
        assert scp.request(0, 0, 0, 2, 0x60000000, 257).result == SCPResult.RC_ARG
        assert scp.request(0, 0, 0, 2, 0x60000000, 4, 3).result == SCPResult.RC_ARG
    assert len(board.chips) == 2  # only written chips keep state


def test_fill(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        scp.ok(0, 0, 0, 5, 0x60010000, 0x11223344, 64)
        assert scp.read(0, 0, 0x60010000, 8) == bytes.fromhex("4433221144332211")
        assert scp.read(0, 0, 0x60010040, 4) == bytes(4)


def test_system_variables_and_vcpu(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        sv = scp.read(3, 4, 0xF5007F00, 256)
        assert struct.unpack_from("<H", sv, 0)[0] == (3 << 8) | 4
        assert sv[2:4] == b"\x08\x08"
        assert sv[0x94:0xBC] == (bytes(range(18)) + b"\xff\xff") * 2
        assert sv[0xF0:0xF4] == bytes(4)  # not an Ethernet chip
        assert scp.read(255, 255, 0xF5007FF0, 4) == board.ip_bytes
        assert scp.read(255, 255, 0xF5007F02, 2) == b"\x08\x08"
        assert scp.word(255, 255, 0xF5007F50) == 16384
        core0 = scp.read(3, 4, 0xE5007000, 128)
        core5 = scp.read(3, 4, 0xE5007000 + 5 * 128, 128)
        assert core0[46] == 7 and core0[72:79] == b"scamp-3"
        assert (core5[45], core5[46], core5[47]) == (5, 15, 0)
        scp.write(3, 4, 0xE5007000 + 5 * 128 + 112, struct.pack("<I", 0x60240018))
        assert scp.word(3, 4, 0xE5007000 + 5 * 128 + 112) == 0x60240018


def test_router_diagnostics_write_one_to_clear(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        scp.write(0, 0, 0xE1000300, struct.pack("<16I", *range(1, 17)))
        scp.write(0, 0, 0xF100002C, struct.pack("<I", 0x0003FFFF))  # reset counters 0, 1
        counters = struct.unpack("<16I", scp.read(0, 0, 0xE1000300, 64))
        assert counters[:3] == (0, 0, 3)
        assert scp.word(0, 0, 0xE100002C) == 0xFFFF


def test_chip_info(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        root = chip_info(scp, 255, 255)
        assert root["source"] == (0, 0)
        assert root["cores"] == 18 and root["router"] == 1023 and root["sdram"] == 123469792
        assert root["ethernet"] == 1 and root["ip"] == board.ip and root["parent"] == 7
        assert root["states"] == bytes([7] + [15] * 17)
        other = chip_info(scp, 4, 7)
        assert other["source"] == (4, 7) and other["ethernet"] == 0 and other["ip"] == "0.0.0.0"
        assert other["eth"] == (0, 0) and other["parent"] < 6
        # Links are symmetric and only to chips of the board.
        from pyspalloc.geometry import BOARD_CHIPS, CHIP_LINK_DELTAS

        chips = {tuple(c) for c in BOARD_CHIPS}
        links = {c: chip_info(scp, *c)["links"] for c in chips}
        for (x, y), bits in links.items():
            for link, (dx, dy) in enumerate(CHIP_LINK_DELTAS):
                there = (x + dx, y + dy)
                assert bool(bits & (1 << link)) == (there in chips)
                if there in chips:
                    assert links[there] & (1 << ((link + 3) % 6))


def test_odd_requests(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        # Short SCP request (no args): RC_LEN, as SC&MP answers.
        scp.seq += 1
        short = bytes.fromhex("0000 87ff 00ff 0000 0000") + struct.pack("<2H", 0, scp.seq)
        scp.send_raw(short)
        reply, _ = scp.sock.recvfrom(400)
        assert reply[10] == SCPResult.RC_LEN
        # SDP port 1 to core 0 expecting a reply: RC_PORT.
        from pyspalloc.wire.scp import SCPRequest
        from pyspalloc.wire.sdp import SDPHeader

        request = SCPRequest(SDPHeader(dest_port=1), 0, 77, 0, 0, 0)
        scp.send_raw(request.to_bytes())
        reply, _ = scp.sock.recvfrom(400)
        assert reply[10] == SCPResult.RC_PORT
        # Requests with no reply wanted get none; the board keeps answering.
        scp.send_raw(SCPRequest(SDPHeader(flags=0x07), 3, 5, 0x60000000, 4, 0, b"abcd").to_bytes())
        assert scp.read(0, 0, 0x60000000, 4) == b"abcd"


def test_link_read_write_reach_the_neighbour(make_vm) -> None:
    board = _board(make_vm)
    with ScpClient(board.ip) as scp:
        # From (1, 1) over link 0 (east) is (2, 1).
        scp.ok(1, 1, 0, 18, 0x60000100, 4, 0, data=b"link")
        assert scp.read(2, 1, 0x60000100, 4) == b"link"
        assert scp.ok(3, 1, 0, 17, 0x60000100, 4, 3).payload == b"link"  # (3, 1) reads west
        assert scp.request(0, 0, 0, 17, 0x60000000, 4, 6).result == SCPResult.RC_ARG
        assert scp.request(0, 0, 0, 17, 0x60000000, 3, 0).result == SCPResult.RC_ARG
        # (0, 0) has no south-west neighbour on a lone board.
        assert scp.request(0, 0, 0, 17, 0x60000000, 4, 4).result == SCPResult.RC_TIMEOUT
