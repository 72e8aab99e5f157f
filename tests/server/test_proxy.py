"""The proxy websocket against UDP "boards" on loopback, served by a real uvicorn."""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from fastapi import FastAPI, WebSocket
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from pyspalloc.server.proxy import ProxyOptions, ProxyRegistry, serve_proxy
from pyspalloc.wire.proxy import (
    CloseReply,
    CloseRequest,
    ErrorReply,
    Message,
    MessageTo,
    OpenReply,
    OpenRequest,
    OpenUnboundReply,
    OpenUnboundRequest,
    decode_server_frame,
)

_NET = random.randrange(100, 250)
BOARD_IPS = [f"127.1.{_NET}.1", f"127.1.{_NET}.9", f"127.1.{_NET}.17"]
OUTSIDE_IP = f"127.1.{_NET + 1}.1"
PORT = 17893


class EchoBoard:
    """A UDP socket that answers every datagram with ``b"echo:" + datagram``."""

    def __init__(self, ip: str, port: int = PORT) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.1)
        self.ip = ip
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append((data, addr))
            if data.startswith(b"quiet"):
                continue
            self.sock.sendto(b"echo:" + data, addr)

    def send_to(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send an unsolicited datagram (like an IP-tagged packet)."""
        self.sock.sendto(data, addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@dataclass
class Harness:
    url: str
    registry: ProxyRegistry
    jobs: dict[int, dict[tuple[int, int], str]]
    boards: list[EchoBoard] = field(default_factory=list)

    def connect(self, job_id: int) -> ClientConnection:
        return connect(f"{self.url}/proxy/{job_id}", open_timeout=5, close_timeout=5)


def _make_app(registry: ProxyRegistry, jobs: dict[int, dict[tuple[int, int], str]]) -> FastAPI:
    app = FastAPI()

    @app.websocket("/proxy/{job_id}")
    async def proxy(websocket: WebSocket, job_id: int) -> None:
        boards = jobs.get(job_id)
        if boards is None:
            await websocket.close(1008, "no such job")
            return
        options = ProxyOptions(max_channels=2, allow_unbound=False) if job_id == 3 else None
        await serve_proxy(websocket, job_id, boards, registry, options=options)

    return app


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    registry = ProxyRegistry()
    jobs = {
        1: {(0, 0): BOARD_IPS[0], (8, 4): BOARD_IPS[1], (4, 8): BOARD_IPS[2]},
        2: {(0, 0): OUTSIDE_IP},
        3: {(0, 0): BOARD_IPS[0]},
    }
    config = uvicorn.Config(
        _make_app(registry, jobs), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    boards = [EchoBoard(ip) for ip in [*BOARD_IPS, OUTSIDE_IP]]
    try:
        yield Harness(f"ws://127.0.0.1:{port}", registry, jobs, boards)
    finally:
        for board in boards:
            board.close()
        server.should_exit = True
        thread.join(10)


def recv(ws: ClientConnection, timeout: float = 5.0) -> object:
    data = ws.recv(timeout=timeout)
    assert isinstance(data, bytes)
    return decode_server_frame(data)


def open_channel(ws: ClientConnection, corr: int, x: int, y: int, port: int = PORT) -> int:
    ws.send(OpenRequest(corr, x, y, port).to_bytes())
    reply = recv(ws)
    assert isinstance(reply, OpenReply), reply
    assert reply.correlation_id == corr
    assert reply.channel_id != 0
    return reply.channel_id


def test_open_msg_close_round_trip(harness: Harness) -> None:
    with harness.connect(1) as ws:
        channel = open_channel(ws, 7, 8, 4)
        big = bytes(range(256)) * 20  # 5120 bytes: not truncated at 300
        for payload in (b"\x00\x00hello", big):
            ws.send(Message(channel, payload).to_bytes())
            reply = recv(ws)
            assert reply == Message(channel, b"echo:" + payload)
        ws.send(CloseRequest(8, channel).to_bytes())
        assert recv(ws) == CloseReply(8, channel)
        # closing twice answers 0; MSG on the closed channel is silently dropped
        ws.send(CloseRequest(9, channel).to_bytes())
        assert recv(ws) == CloseReply(9, 0)
        ws.send(Message(channel, b"lost").to_bytes())
        other = open_channel(ws, 10, 0, 0)
        assert other > channel
        ws.send(Message(other, b"x").to_bytes())
        assert recv(ws) == Message(other, b"echo:x")


def test_channels_of_several_boards_are_routed(harness: Harness) -> None:
    with harness.connect(1) as ws:
        ids = {open_channel(ws, i, *xy): xy for i, xy in enumerate([(0, 0), (8, 4), (4, 8)])}
        for channel, xy in ids.items():
            ws.send(Message(channel, f"{xy}".encode()).to_bytes())
        got = {}
        for _ in ids:
            frame = recv(ws)
            assert isinstance(frame, Message)
            got[frame.channel_id] = frame.payload
        assert got == {c: b"echo:" + f"{xy}".encode() for c, xy in ids.items()}


def test_open_outside_job_is_an_error_and_socket_keeps_serving(harness: Harness) -> None:
    with harness.connect(1) as ws:
        ws.send(OpenRequest(3, 12, 0, PORT).to_bytes())
        reply = recv(ws)
        assert isinstance(reply, ErrorReply)
        assert reply.correlation_id == 3
        assert "unrecognised ethernet chip" in reply.message
        ws.send(struct.pack("<5I", 0, 4, 0, 0, 0))  # port 0
        reply = recv(ws)
        assert isinstance(reply, ErrorReply) and "bad port number" in reply.message
        ws.send(struct.pack("<5I", 0, 5, 0, 0, 70000))
        reply = recv(ws)
        assert isinstance(reply, ErrorReply) and "bad port number" in reply.message
        channel = open_channel(ws, 6, 0, 0)
        ws.send(Message(channel, b"still").to_bytes())
        assert recv(ws) == Message(channel, b"echo:still")


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (struct.pack("<2I", 9, 77), "unknown proxy opcode 9"),
        (struct.pack("<2I", 5, 77) + b"hi", "ERROR"),
        (struct.pack("<5I", 0, 77, 0, 0, PORT) + b"x", "exactly 20 bytes"),
        (struct.pack("<4I", 0, 77, 0, 0), "exactly 20 bytes"),
        (struct.pack("<3I", 3, 77, 1), "exactly 8 bytes"),
        (struct.pack("<2I", 1, 77), "exactly 12 bytes"),
        (struct.pack("<2I", 0xFFFFFFFF, 77), "unknown proxy opcode"),
    ],
)
def test_malformed_frames_get_an_error(harness: Harness, frame: bytes, text: str) -> None:
    with harness.connect(1) as ws, harness.connect(1) as bystander:
        channel = open_channel(bystander, 1, 0, 0)
        ws.send(frame)
        reply = recv(ws)
        assert isinstance(reply, ErrorReply)
        assert reply.correlation_id == 77
        assert text in reply.message
        # the socket and others are unaffected
        open_channel(ws, 2, 0, 0)
        bystander.send(Message(channel, b"ok").to_bytes())
        assert recv(bystander) == Message(channel, b"echo:ok")


@pytest.mark.parametrize("frame", [b"", b"\x00", b"\x02\x00\x00\x00", b"\x00\x00\x00\x00\x01"])
def test_short_frames_close_cleanly_with_1007(harness: Harness, frame: bytes) -> None:
    with harness.connect(1) as bystander:
        channel = open_channel(bystander, 1, 0, 0)
        with harness.connect(1) as ws:
            open_channel(ws, 1, 0, 0)
            ws.send(frame)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1007
            reason = info.value.rcvd.reason
            assert "too short" in reason or "exactly 20 bytes" in reason
        bystander.send(Message(channel, b"ok").to_bytes())
        assert recv(bystander) == Message(channel, b"echo:ok")
    deadline = time.monotonic() + 5
    while harness.registry.count() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert harness.registry.count() == 0


def test_text_frame_closes_with_1003(harness: Harness) -> None:
    with harness.connect(1) as ws:
        ws.send("hello")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1003


def test_unbound_channel_receives_from_job_boards_only(harness: Harness) -> None:
    with harness.connect(1) as ws:
        ws.send(OpenUnboundRequest(11).to_bytes())
        reply = recv(ws)
        assert isinstance(reply, OpenUnboundReply), reply
        assert reply.correlation_id == 11 and reply.channel_id != 0
        assert reply.ip.startswith("127.") and reply.ip != "0.0.0.0"
        address = (reply.ip, reply.port)
        outsider = next(b for b in harness.boards if b.ip == OUTSIDE_IP)
        outsider.send_to(b"intruder", address)
        board = harness.boards[1]
        board.send_to(b"\x00\x00tagged packet", address)
        assert recv(ws) == Message(reply.channel_id, b"\x00\x00tagged packet")
        # MSG_TO reaches the board from the unbound socket (the board echoes to it)
        ws.send(MessageTo(reply.channel_id, 4, 8, PORT, b"to-board").to_bytes())
        assert recv(ws) == Message(reply.channel_id, b"echo:to-board")
        assert harness.boards[2].received[-1][1] == address
        # MSG on an unbound channel is dropped; MSG_TO outside the job is an error
        ws.send(Message(reply.channel_id, b"quiet").to_bytes())
        ws.send(MessageTo(reply.channel_id, 12, 12, PORT, b"x").to_bytes())
        error = recv(ws)
        assert isinstance(error, ErrorReply) and "unrecognised ethernet chip" in error.message
        ws.send(struct.pack("<5I", 4, reply.channel_id, 0, 0, 0) + b"x")
        error = recv(ws)
        assert isinstance(error, ErrorReply) and "bad port number" in error.message
        bound = open_channel(ws, 12, 0, 0)
        ws.send(MessageTo(bound, 0, 0, PORT, b"x").to_bytes())
        error = recv(ws)
        assert isinstance(error, ErrorReply) and "channel is connected" in error.message
        assert error.correlation_id == bound
        # MSG_TO on an unknown channel is ignored
        ws.send(MessageTo(0xFFFFFF, 0, 0, PORT, b"quiet").to_bytes())
        ws.send(CloseRequest(13, reply.channel_id).to_bytes())
        assert recv(ws) == CloseReply(13, reply.channel_id)


def test_job_end_closes_websocket_with_1000(harness: Harness) -> None:
    with harness.connect(1) as ws, harness.connect(2) as other:
        channel = open_channel(ws, 1, 0, 0)
        open_channel(other, 1, 0, 0)
        assert harness.registry.count(1) == 1
        assert harness.registry.close_job(1, "job destroyed: test") == 1
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1000
        assert info.value.rcvd.reason == "job destroyed: test"
        del channel
        # the other job's proxy is untouched
        other.send(Message(1, b"x").to_bytes())
        assert harness.registry.count(2) == 1


def test_close_job_from_another_thread(harness: Harness) -> None:
    with harness.connect(1) as ws:
        open_channel(ws, 1, 0, 0)
        done: list[int] = []
        thread = threading.Thread(target=lambda: done.append(harness.registry.close_job(1)))
        thread.start()
        thread.join(5)
        assert done == [1]
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000


def test_pings_are_answered(harness: Harness) -> None:
    with harness.connect(1) as ws:
        pong = ws.ping(b"hi")
        assert pong.wait(5)


def test_channel_ids_are_global_and_never_zero(harness: Harness) -> None:
    with harness.connect(1) as a, harness.connect(1) as b:
        ids = [open_channel(a, 1, 0, 0), open_channel(b, 1, 0, 0), open_channel(a, 2, 0, 0)]
        assert len(set(ids)) == 3 and 0 not in ids
        # b cannot close a's channel
        b.send(CloseRequest(5, ids[0]).to_bytes())
        assert recv(b) == CloseReply(5, 0)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_closing_the_websocket_closes_every_channel(harness: Harness) -> None:
    with harness.connect(1) as warm:  # let lazily made sockets (loop, executor) exist
        open_channel(warm, 1, 0, 0)
    time.sleep(0.2)
    before = _open_fds()
    with harness.connect(1) as ws:
        for corr in range(20):
            open_channel(ws, corr, 8, 4)
        ws.send(OpenUnboundRequest(99).to_bytes())
        assert isinstance(recv(ws), OpenUnboundReply)
        assert _open_fds() >= before + 21
    deadline = time.monotonic() + 5
    while _open_fds() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_fds() <= before
    assert harness.registry.count() == 0


def test_channel_limit_and_disabled_unbound(harness: Harness) -> None:
    with harness.connect(3) as ws:
        open_channel(ws, 1, 0, 0)
        open_channel(ws, 2, 0, 0)
        ws.send(OpenRequest(3, 0, 0, PORT).to_bytes())
        error = recv(ws)
        assert isinstance(error, ErrorReply) and "too many channels" in error.message
        ws.send(OpenUnboundRequest(4).to_bytes())
        error = recv(ws)
        assert isinstance(error, ErrorReply) and error.correlation_id == 4


def test_random_frames_never_break_the_session(harness: Harness) -> None:
    rng = random.Random(1234)
    with harness.connect(1) as ws:
        real = open_channel(ws, 1, 0, 0)
        for _ in range(400):
            opcode = rng.choice([0, 1, 2, 3, 4, 5, 6, 0xFFFFFFFF])
            words = [opcode] + [rng.choice([0, 1, 4, 8, real, 17893, 0xFFFFFFFF]) for _ in range(4)]
            frame = struct.pack("<5I", *words)[: rng.randrange(8, 21)]
            ws.send(frame + b"quiet" * rng.randrange(0, 2))
        # every frame was handled in order: the marker OPEN's reply comes after them all
        ws.send(OpenRequest(0xABCDEF, 0, 0, PORT).to_bytes())
        while True:
            frame = recv(ws)
            if isinstance(frame, OpenReply) and frame.correlation_id == 0xABCDEF:
                break
        ws.send(Message(frame.channel_id, b"alive").to_bytes())
        while (reply := recv(ws)) != Message(frame.channel_id, b"echo:alive"):
            assert isinstance(reply, (Message, ErrorReply, OpenReply, CloseReply))
    assert harness.registry.count(1) <= 1


def test_oversized_datagrams_are_refused_and_the_channel_lives_on(harness: Harness) -> None:
    with harness.connect(1) as ws:
        channel = open_channel(ws, 1, 0, 0)
        ws.send(Message(channel, b"\x00" * 70000).to_bytes())  # dropped, as UDP would
        biggest = b"x" * (65507 - 5)  # the echo adds 5 bytes: still one datagram
        ws.send(Message(channel, biggest).to_bytes())
        assert recv(ws) == Message(channel, b"echo:" + biggest)
        ws.send(OpenUnboundRequest(2).to_bytes())
        unbound = recv(ws)
        assert isinstance(unbound, OpenUnboundReply)
        ws.send(MessageTo(unbound.channel_id, 0, 0, PORT, b"\x00" * 70000).to_bytes())
        error = recv(ws)
        assert isinstance(error, ErrorReply) and "too large" in error.message
        ws.send(Message(channel, b"ok").to_bytes())
        assert recv(ws) == Message(channel, b"echo:ok")


def test_long_close_reason_is_cut_to_fit(harness: Harness) -> None:
    with harness.connect(1) as ws:
        open_channel(ws, 1, 0, 0)
        harness.registry.close_job(1, "job destroyed: " + "é" * 200)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000
        assert info.value.rcvd.reason.startswith("job destroyed: éé")
        assert len(info.value.rcvd.reason.encode()) <= 123
