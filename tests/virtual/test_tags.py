"""IP tags, reverse IP tags, traffic from cores to the host and to cores."""

from __future__ import annotations

import socket
import struct

import pytest

from pyspalloc.wire.eieio import EIEIODataMessage, EIEIOType, decode_eieio
from pyspalloc.wire.scp import SCPResult
from pyspalloc.wire.sdp import SDPHeader, SDPMessage
from tests.virtual.helpers import ScpClient

IPTAG = 26


def _board(make_vm):
    vm = make_vm(booted=True)
    return next(iter(vm.boards.values()))


def _entry(scp: ScpClient, tag: int) -> tuple:
    payload = scp.ok(255, 255, 0, IPTAG, (2 << 16) | tag, 1).payload
    return struct.unpack("<4s6xHHHIHBBB7x", payload)


@pytest.fixture
def host() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


def test_set_get_clear_tto(make_vm, host) -> None:
    board = _board(make_vm)
    port = host.getsockname()[1]
    with ScpClient(board.ip) as scp:
        info = scp.ok(255, 255, 0, IPTAG, 4 << 16, 255).payload
        assert info[:4] == bytes([0, 32, 8, 8])
        assert scp.ok(255, 255, 0, IPTAG, 4 << 16, 9).args(1)[0] & 0xFF == 0
        assert scp.ok(255, 255, 0, IPTAG, 4 << 16, 255).payload[0] == 9
        reply = scp.ok(0, 0, 0, IPTAG, (1 << 28) | (1 << 16) | 1, port, 0x0100007F)
        assert reply.args(1) == (1,)
        ip, tx_port, _, flags, _, _, _, _, _ = _entry(scp, 1)
        assert socket.inet_ntoa(ip) == "127.0.0.1" and tx_port == port
        assert flags & 0x8000 and flags & 0x0100
        # arg3 = 0: the IP of the request's sender; use_sender: its IP and port too.
        scp.ok(0, 0, 0, IPTAG, (1 << 16) | 2, 4321, 0)
        ip, tx_port, *_ = _entry(scp, 2)
        assert socket.inet_ntoa(ip) == "127.0.0.1" and tx_port == 4321
        scp.ok(0, 0, 0, IPTAG, (1 << 30) | (1 << 28) | (1 << 16) | 3, 0, 0)
        ip, tx_port, _, flags, *_ = _entry(scp, 3)
        assert tx_port == scp.sock.getsockname()[1] and flags & 0x0400
        scp.ok(0, 0, 0, IPTAG, (3 << 16) | 2)
        assert not _entry(scp, 2)[3] & 0x8000
        assert not _entry(scp, 9)[3] & 0x8000  # pool tags report free
        assert scp.request(0, 0, 0, IPTAG, (1 << 16) | 16).result == SCPResult.RC_ARG
        assert scp.request(0, 0, 0, IPTAG, 5 << 16).result == SCPResult.RC_ARG


@pytest.mark.parametrize("strip", [True, False])
def test_send_from_core_through_tag(make_vm, host, strip: bool) -> None:
    board = _board(make_vm)
    port = host.getsockname()[1]
    with ScpClient(board.ip) as scp:
        scp.ok(0, 0, 0, IPTAG, (int(strip) << 28) | (1 << 16) | 4, port, 0x0100007F)
    message = EIEIODataMessage(EIEIOType.KEY_16, (1, 2, 3))
    board.send_from_core(2, 3, 7, 4, message.to_bytes())
    data, sender = host.recvfrom(400)
    assert sender == (board.ip, 17893)
    if strip:
        assert decode_eieio(data) == message
    else:
        sdp = SDPMessage.from_bytes(data)
        assert data[:2] == b"\0\0"
        assert (sdp.header.src_x, sdp.header.src_y, sdp.header.src_cpu) == (2, 3, 7)
        assert sdp.header.flags == 0x07 and sdp.header.tag == 4
        assert decode_eieio(sdp.data) == message
    with pytest.raises(ValueError):
        board.send_from_core(0, 0, 1, 6, b"x")  # tag 6 not set


def test_reverse_tag_delivery_and_reply_path(make_vm, host) -> None:
    board = _board(make_vm)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((board.ip, 0))
    rx_port = probe.getsockname()[1]
    probe.close()
    with ScpClient(board.ip) as scp:
        arg1 = (1 << 29) | (1 << 28) | (1 << 16) | (1 << 13) | (3 << 8) | 2
        scp.ok(0, 0, 0, IPTAG, arg1, (4 << 24) | (5 << 16) | rx_port, 0)
        entry = _entry(scp, 2)
        assert entry[3] & 0x0200 and entry[5] == rx_port and entry[6:] == (5, 4, (1 << 5) | 3)
    host.sendto(b"\x01\x02eieio", (board.ip, rx_port))
    for _ in range(100):
        if board.reverse_tag_packets:
            break
        host.settimeout(0.01)
        try:
            host.recvfrom(10)
        except OSError:
            pass
    delivered = board.reverse_tag_packets[0]
    assert delivered.data == b"\x01\x02eieio"
    header = delivered.header
    assert (header.dest_x, header.dest_y, header.dest_port, header.dest_cpu) == (4, 5, 1, 3)
    assert header.tag == 2 and header.flags == 0x07
    # The core can answer through the tag: from rx_port to the sender.
    host.settimeout(2.0)
    board.send_from_core(4, 5, 3, 2, b"answer")
    data, sender = host.recvfrom(100)
    assert (data, sender) == (b"answer", (board.ip, rx_port))


def test_sdp_to_cores_is_kept(make_vm, host) -> None:
    board = _board(make_vm)
    header = SDPHeader(flags=0x07, tag=0, dest_port=1, dest_cpu=3, src_port=0, src_cpu=0)
    eieio = EIEIODataMessage(EIEIOType.KEY_32, (0xABCD,)).to_bytes()
    host.sendto(SDPMessage(header, eieio).to_bytes(), (board.ip, 17893))
    with ScpClient(board.ip) as scp:
        scp.ok(255, 255, 0, 0)  # ordered after the SDP packet
    assert [m.data for m in board.core_packets] == [eieio]
    assert board.core_packets[0].header.dest_cpu == 3
