"""The proxy client's RFC 6455 framing (:mod:`pyspalloc.client.wsframes`) on a socket pair."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from pyspalloc.client.wsframes import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    ConnectionLost,
    FrameSocket,
    mask,
)


class _Opened:
    """What FrameSocket needs of an open websocket-client WebSocket: its socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def shutdown(self) -> None:
        self.sock.close()


@pytest.fixture
def pair() -> Iterator[tuple[FrameSocket, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.settimeout(2.0)
    peer.settimeout(2.0)
    frames = FrameSocket(_Opened(ours))  # type: ignore[arg-type]
    try:
        yield frames, peer
    finally:
        frames.close()
        peer.close()


def server_frame(opcode: int, payload: bytes, fin: bool = True, key: bytes = b"") -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    flag = 0x80 if key else 0
    if size < 126:
        header = bytes((first, flag | size))
    elif size < 65536:
        header = struct.pack("!BBH", first, flag | 126, size)
    else:
        header = struct.pack("!BBQ", first, flag | 127, size)
    return header + key + (mask(key, payload) if key else payload)


def read_client_frame(peer: socket.socket) -> tuple[int, bytes]:
    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = peer.recv(size - len(data))
            assert chunk
            data += chunk
        return data

    first, second = exactly(2)
    assert first & 0x80, "clients send whole messages"
    assert second & 0x80, "client frames must be masked"
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", exactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", exactly(8))
    key = exactly(4)
    return first & 0x0F, mask(key, exactly(size))


def receive_all(frames: FrameSocket, count: int) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    for _ in range(50):
        got += frames.receive()
        if len(got) >= count:
            break
    return got


def test_mask_matches_the_rfc_example() -> None:
    key = bytes.fromhex("37fa213d")
    assert mask(key, b"Hello") == bytes.fromhex("7f9f4d5158")
    assert mask(key, mask(key, b"Hello")) == b"Hello"
    assert mask(key, b"") == b""


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_sent_frames_are_masked_with_every_length_form(
    pair: tuple[FrameSocket, Any], size: int
) -> None:
    frames, peer = pair
    payload = bytes(i & 0xFF for i in range(size))
    frames.send_binary(payload)
    assert read_client_frame(peer) == (BINARY, payload)


def test_keys_differ_between_frames(pair: tuple[FrameSocket, Any]) -> None:
    frames, peer = pair
    for _ in range(3):
        frames.send_binary(b"\x00" * 8)  # a zero payload shows the key itself
    keys = {peer.recv(14)[2:6] for _ in range(3)}
    assert len(keys) == 3


def test_many_frames_in_one_read(pair: tuple[FrameSocket, Any]) -> None:
    frames, peer = pair
    messages = [bytes([n]) * n for n in range(1, 40)]
    peer.sendall(b"".join(server_frame(BINARY, m) for m in messages))
    assert receive_all(frames, len(messages)) == [(BINARY, m) for m in messages]


def test_a_frame_split_across_reads(pair: tuple[FrameSocket, Any]) -> None:
    frames, peer = pair
    data = server_frame(BINARY, b"x" * 300)
    peer.sendall(data[:1])
    assert frames.receive() == []
    peer.sendall(data[1:3])
    assert frames.receive() == []
    peer.sendall(data[3:])
    assert receive_all(frames, 1) == [(BINARY, b"x" * 300)]


def test_fragmented_and_masked_messages(pair: tuple[FrameSocket, Any]) -> None:
    frames, peer = pair
    peer.sendall(
        server_frame(BINARY, b"abc", fin=False)
        + server_frame(PING, b"p")  # control frames may come between fragments
        + server_frame(0, b"def", fin=False)
        + server_frame(0, b"ghi", key=b"\x01\x02\x03\x04")
    )
    got = receive_all(frames, 2)
    assert got == [(PING, b"p"), (BINARY, b"abcdefghi")]
    assert read_client_frame(peer) == (PONG, b"p")


def test_pong_and_ping_methods(pair: tuple[FrameSocket, Any]) -> None:
    frames, peer = pair
    frames.ping()
    assert read_client_frame(peer) == (PING, b"")
    peer.sendall(server_frame(PONG, b""))
    assert receive_all(frames, 1) == [(PONG, b"")]


def test_close_frame_delivers_earlier_messages_then_fails(pair: tuple[FrameSocket, Any]) -> None:
    frames, peer = pair
    peer.sendall(
        server_frame(BINARY, b"last words")
        + server_frame(CLOSE, struct.pack("!H", 1000) + b"job ended")
    )
    assert receive_all(frames, 1) == [(BINARY, b"last words")]
    assert frames.close_code == 1000
    with pytest.raises(ConnectionLost, match="1000 job ended"):
        frames.receive()
    assert read_client_frame(peer)[0] == CLOSE  # the close is answered


def test_end_of_stream_and_bad_frames(pair: tuple[FrameSocket, Any]) -> None:
    frames, peer = pair
    peer.sendall(server_frame(0x3, b""))  # reserved opcode
    with pytest.raises(ConnectionLost, match="unknown opcode"):
        receive_all(frames, 1)
    frames2_ours, frames2_peer = socket.socketpair()
    frames2 = FrameSocket(_Opened(frames2_ours))  # type: ignore[arg-type]
    frames2_peer.sendall(server_frame(0, b"orphan"))
    with pytest.raises(ConnectionLost, match="continuation"):
        receive_all(frames2, 1)
    frames2_peer.close()
    with pytest.raises(ConnectionLost):
        for _ in range(5):
            frames2.receive()
    frames2.close()


def test_timeouts_return_nothing_and_abort_wakes_the_reader(
    pair: tuple[FrameSocket, Any],
) -> None:
    frames, _ = pair
    frames._sock.settimeout(0.05)
    assert frames.receive() == []
    frames.abort()
    with pytest.raises(ConnectionLost):
        frames.receive()
    with pytest.raises(ConnectionLost):
        frames.send_binary(b"after abort")
