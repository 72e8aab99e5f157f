"""The proxy client's websocket handling against a small scripted proxy server.

The server (the ``websockets`` library's) answers OPEN and CLOSE and echoes MSG frames;
the tests make it fragment, ping, close with a given code, refuse handshakes, or go
silent behind a relay, and check what :class:`ProxyConnection` does about it.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from pyspalloc.client.proxy.connection import ProxyConnection
from pyspalloc.client.session import Session
from pyspalloc.exceptions import SpinnmanIOException
from pyspalloc.wire.proxy import (
    CloseReply,
    CloseRequest,
    Message,
    OpenReply,
    OpenRequest,
    decode_client_frame,
)
from tests.support.waiting import eventually


class FakeProxy:
    """A proxy server on loopback; ``connections`` lists every accepted websocket."""

    def __init__(self) -> None:
        self.connections: list[ServerConnection] = []
        self.handshakes = 0
        self.refuse_with: int | None = None
        self.fragment = False
        self._ids = itertools.count(1)
        self.server: Server = serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check,
            compression=None,
            ping_interval=None,
        )
        self.port = self.server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/spalloc/proxy/1"

    def _check(self, connection: ServerConnection, _: Any) -> Any:
        self.handshakes += 1
        if self.refuse_with is not None:
            return connection.respond(self.refuse_with, "refused\n")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        try:
            for data in connection:
                assert isinstance(data, bytes)
                frame = decode_client_frame(data)
                if isinstance(frame, OpenRequest):
                    reply = OpenReply(frame.correlation_id, next(self._ids)).to_bytes()
                    connection.send(reply)
                elif isinstance(frame, CloseRequest):
                    connection.send(CloseReply(frame.correlation_id, frame.channel_id).to_bytes())
                elif isinstance(frame, Message):
                    echo = Message(frame.channel_id, frame.payload).to_bytes()
                    if self.fragment:  # one message in three websocket frames
                        connection.send([echo[:3], echo[3:9], echo[9:]])
                    else:
                        connection.send(echo)
        except ConnectionClosed:
            pass

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(5)


class Relay:
    """A TCP relay to ``port`` whose existing connections can be frozen (not closed)."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._frozen: list[threading.Event] = []
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # stopped
                return
            server = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            frozen = threading.Event()
            self._frozen.append(frozen)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink, frozen), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, frozen: threading.Event) -> None:
        source.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if not frozen.is_set():  # a frozen link swallows everything
                try:
                    sink.sendall(data)
                except OSError:
                    return

    def freeze(self) -> None:
        """Make every connection made so far silently lose everything."""
        for frozen in self._frozen:
            frozen.set()

    def stop(self) -> None:
        self._stop.set()
        for sock in [self._listener, *self._sockets]:
            sock.close()


@pytest.fixture
def fake() -> Iterator[FakeProxy]:
    server = FakeProxy()
    try:
        yield server
    finally:
        server.stop()


def proxy_to(url: str, **options: Any) -> ProxyConnection:
    """A proxy to ``url`` through a session without credentials (the server wants none)."""
    options.setdefault("reconnect_backoff", 0.05)
    options.setdefault("call_timeout", 5.0)
    service = url.replace("ws://", "http://", 1).split("/spalloc/proxy/", 1)[0] + "/"
    return ProxyConnection(url, session=Session(service), **options)


def test_messages_echo_whole_and_fragmented(fake: FakeProxy) -> None:
    with proxy_to(fake.url) as proxy:
        channel = proxy.open_channel(0, 0, 17893)
        channel.send(b"\x00\x00hello")
        assert channel.receive(5.0) == b"\x00\x00hello"
        fake.fragment = True
        big = bytes(range(256)) * 20
        channel.send(big)
        assert channel.receive(5.0) == big
        channel.close(5.0)
        assert not channel.is_open


def test_server_pings_are_answered_and_pongs_count_as_heard(fake: FakeProxy) -> None:
    with proxy_to(fake.url, ping_interval=0.2) as proxy:
        eventually(lambda: len(fake.connections) == 1, what="the websocket")
        assert fake.connections[0].ping(b"are you there").wait(5.0)
        link = proxy.link
        assert link is not None
        heard = link.last_heard
        eventually(lambda: link.last_heard > heard, what="a pong from the server")
        time.sleep(0.8)  # several ping intervals: pongs keep it from being dropped
        assert proxy.reconnects == 0 and proxy.is_connected


def test_close_1000_gives_up_at_once(fake: FakeProxy) -> None:
    proxy = proxy_to(fake.url)
    try:
        channel = proxy.open_channel(0, 0, 17893)
        fake.connections[0].close(1000, "job over")
        eventually(lambda: proxy.is_dead, what="the proxy to give up")
        assert proxy.failure is not None and "1000 job over" in proxy.failure
        with pytest.raises(SpinnmanIOException):
            channel.receive(5.0)
        with pytest.raises(SpinnmanIOException):
            proxy.open_channel(0, 0, 17893)
        assert fake.handshakes == 1 and proxy.reconnects == 0
    finally:
        proxy.close()


def test_close_1012_reconnects_and_reopens(fake: FakeProxy) -> None:
    with proxy_to(fake.url) as proxy:
        channel = proxy.open_channel(0, 0, 17893)
        first = channel.channel_id
        fake.connections[0].close(1012, "restarting")
        eventually(
            lambda: proxy.reconnects == 1 and channel.channel_id not in (None, first),
            what="the reconnection",
        )
        channel.send(b"\x00\x00again")
        assert channel.receive(5.0) == b"\x00\x00again"


def test_refused_handshake_is_not_retried(fake: FakeProxy) -> None:
    fake.refuse_with = 404
    started = time.monotonic()
    with pytest.raises(SpinnmanIOException, match="HTTP 404"):
        proxy_to(fake.url)
    assert time.monotonic() - started < 5.0
    assert fake.handshakes == 1


def test_unreachable_service_fails_after_bounded_attempts() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(SpinnmanIOException, match="cannot connect"):
        proxy_to(f"ws://127.0.0.1:{port}/spalloc/proxy/1", reconnect_attempts=3)
    assert time.monotonic() - started < 5.0


def test_a_silent_websocket_is_dropped_and_replaced(fake: FakeProxy) -> None:
    relay = Relay(fake.port)
    try:
        url = f"ws://127.0.0.1:{relay.port}/spalloc/proxy/1"
        with proxy_to(url, ping_interval=0.2) as proxy:
            channel = proxy.open_channel(0, 0, 17893)
            relay.freeze()  # the websocket stays up but nothing gets through
            eventually(lambda: proxy.reconnects == 1, what="the silent websocket to be dropped")
            eventually(lambda: channel.channel_id is not None, what="the channel to reopen")
            channel.send(b"\x00\x00still here")
            assert channel.receive(5.0) == b"\x00\x00still here"
    finally:
        relay.stop()
