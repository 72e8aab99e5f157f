"""The client side of the Spalloc proxy websocket (``web-api.md`` §6).

One :class:`ProxyConnection` holds one websocket to ``/spalloc/proxy/<job>`` and
multiplexes every channel of the job over it. It composes the layers below it:

* :mod:`~pyspalloc.client.proxy.link` opens the websocket (through the session's
  handshake, with bounded retries) and judges whether a dropped one is worth reopening;
* :mod:`~pyspalloc.client.proxy.calls` runs OPEN, CLOSE and OPEN_UNBOUND as calls with a
  timeout, matched to their answers by correlation id; an ERROR frame raises
  :class:`~pyspalloc.client.proxy.calls.ProxyError` carrying the server's text, and a
  CLOSE answered with channel 0 (already closed) is not an error;
* :mod:`~pyspalloc.client.proxy.channels` are what users send and receive on; this class
  is their :class:`~pyspalloc.client.proxy.channels.ChannelHost`, and keeps them in a
  :class:`~pyspalloc.client.proxy.channels.ChannelTable`.

What is its own: a receiver thread hands each MSG frame to its channel (one queue put
per packet, no other thread hop) and each other frame to the calls; a pinger thread
pings every 30 s and drops a websocket that stays silent for too long; a dropped
websocket is reconnected and every open channel is opened again. A bound channel gets
a new server channel id behind the same :class:`Channel` object; receives that were
waiting meanwhile just time out, so a retrying SCP engine carries on.

The websocket itself is websocket-client's (framing, masking, answering pings); proxy
frames are encoded and decoded with :mod:`pyspalloc.wire.proxy` only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import websocket
from websocket import ABNF

from pyspalloc.client.proxy.calls import WS_ERRORS, Calls, Reply
from pyspalloc.client.proxy.channels import Channel, ChannelTable, UnboundChannel
from pyspalloc.client.proxy.link import (
    CONNECT_TIMEOUT,
    RECONNECT_ATTEMPTS,
    RECONNECT_BACKOFF,
    Dialler,
    Link,
    Redial,
)
from pyspalloc.exceptions import SpinnmanIOException, SpinnmanTimeoutException
from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.proxy import (
    CloseReply,
    CloseRequest,
    ErrorReply,
    Message,
    OpenReply,
    OpenUnboundReply,
    ServerFrame,
    decode_server_frame,
)

if TYPE_CHECKING:
    from pyspalloc.client.session import Session

__all__ = ["CALL_TIMEOUT", "PING_INTERVAL", "ProxyConnection"]

log = logging.getLogger(__name__)

#: Default time limit of an OPEN, CLOSE or OPEN_UNBOUND call, in seconds.
CALL_TIMEOUT: Final = 10.0
#: Seconds between pings.
PING_INTERVAL: Final = 30.0
_BINARY: Final = ABNF.OPCODE_BINARY
_CLOSE: Final = ABNF.OPCODE_CLOSE

#: The first four bytes of every MSG frame (taken from the codec's own encoding).
_MSG_OPCODE: Final = Message(0, b"").to_bytes()[:4]


class ProxyConnection:
    """One proxy websocket for one job, multiplexing all its channels.

    Parameters
    ----------
    url:
        The job's ``proxy-ref`` (``ws://`` or ``wss://``).
    session:
        Every handshake goes through :meth:`Session.websocket`, which sends the
        session's credentials, maps the URL scheme and renews the session on 401/403.
    call_timeout:
        Default time limit of OPEN, CLOSE and OPEN_UNBOUND calls.
    connect_timeout:
        Time limit of one websocket handshake (and of each socket send).
    ping_interval:
        Seconds between pings; a websocket silent for three intervals is dropped.
    reconnect_attempts:
        Handshake attempts after the websocket drops (and for the first connection).
    reconnect_backoff:
        Sleep before the second attempt; it doubles each time, up to 3 s.

    Raises
    ------
    SpinnmanIOException
        If the websocket cannot be opened.
    """

    def __init__(
        self,
        url: str,
        session: Session,
        *,
        call_timeout: float = CALL_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
        reconnect_backoff: float = RECONNECT_BACKOFF,
    ) -> None:
        self.url = url
        self._stop = threading.Event()
        self._dialler = Dialler(url, session, self._stop)
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.reconnect_attempts = max(1, reconnect_attempts)
        self.reconnect_backoff = reconnect_backoff
        self._calls = Calls()
        self._redial = Redial()
        self._channels = ChannelTable()
        self._lock = threading.Lock()
        self._connected = threading.Condition(self._lock)
        self._link: Link | None = None
        self._closing = False
        #: Why the proxy is dead (None while it is usable).
        self.failure: str | None = None
        #: How many times the websocket has been reconnected.
        self.reconnects = 0
        self._link = self._connect_with_retries()
        self._reader = threading.Thread(target=self._run, name="spalloc-proxy-rx", daemon=True)
        self._pinger = threading.Thread(target=self._ping, name="spalloc-proxy-ping", daemon=True)
        self._reader.start()
        self._pinger.start()

    # ------------------------------------------------------------------ public API

    @property
    def is_dead(self) -> bool:
        """Whether the proxy is closed or gave up reconnecting."""
        return self.failure is not None

    @property
    def is_connected(self) -> bool:
        """Whether the websocket is up right now."""
        return self._link is not None and self.failure is None

    @property
    def link(self) -> Link | None:
        """The websocket now in use (None while reconnecting or once closed)."""
        return self._link

    @property
    def threads(self) -> tuple[threading.Thread, threading.Thread]:
        """The receiver and pinger threads (both end once the proxy is closed)."""
        return self._reader, self._pinger

    def open_channel(self, x: int, y: int, port: int, timeout: float | None = None) -> Channel:
        """Open a channel to UDP ``port`` of the board whose Ethernet chip is (x, y).

        Parameters
        ----------
        x, y:
            Job-relative coordinates of the board's Ethernet chip.
        port:
            The board's UDP port (17893 for SCP, 54321 for boot).
        timeout:
            Time limit of the call; :attr:`call_timeout` if None.

        Raises
        ------
        ProxyError
            If the server refused (its text is the message).
        SpinnmanTimeoutException
            If no answer came in time.
        SpinnmanIOException
            If the proxy is closed.
        """
        channel = Channel(self, x, y, port)
        self._call(channel.open_request, self._registrar(channel), "OPEN", timeout)
        return channel

    def open_unbound(self, timeout: float | None = None) -> UnboundChannel:
        """Open an unbound channel that receives from all the job's boards.

        Raises
        ------
        ProxyError
            If the server refused.
        SpinnmanTimeoutException
            If no answer came in time.
        SpinnmanIOException
            If the proxy is closed.
        """
        channel = UnboundChannel(self)
        self._call(channel.open_request, self._registrar(channel), "OPEN_UNBOUND", timeout)
        return channel

    def channels(self) -> list[Channel]:
        """The channels currently open (or reopening)."""
        return self._channels.all()

    def close(self) -> None:
        """Close the websocket and every channel; safe to call more than once."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self.failure is None:
                self.failure = "closed by the client"
            link = self._link
            self._link = None
            self._connected.notify_all()
        self._stop.set()
        if link is not None:
            link.hang_up()
        self._fail_everything()
        for thread in (self._reader, self._pinger):
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        if link is not None:
            link.close()

    def drop_websocket(self) -> None:
        """Break the current websocket as a network fault would (for tests and demos).

        The proxy reconnects and reopens its channels by itself.
        """
        link = self._link
        if link is not None:
            link.abort()

    def __enter__(self) -> ProxyConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------- the channels' host (ChannelHost)

    def send_frames(self, frames: list[bytes]) -> None:
        """Send binary frames (in one socket write); dropped while reconnecting.

        Raises
        ------
        SpinnmanIOException
            If the proxy is closed or gave up.
        """
        link = self._link
        if link is None:
            if self.failure is not None:
                raise SpinnmanIOException(f"proxy websocket is closed: {self.failure}")
            return  # reconnecting: dropped, like a lost datagram
        try:
            link.send(frames)
        except WS_ERRORS as error:
            if self.failure is not None:
                raise SpinnmanIOException(f"proxy websocket is closed: {self.failure}") from error
            log.debug("proxy send failed (%s); reconnect pending", error)
            link.abort()  # make sure the receiver notices and reconnects

    def close_channel(self, channel: Channel, timeout: float | None) -> None:
        """Forget ``channel``, kill it, and CLOSE it on the server if it is open there.

        Raises
        ------
        SpinnmanTimeoutException
            If the CLOSE was not answered in time.
        SpinnmanIOException
            If the server closed another channel, or the proxy is closed.
        """
        channel_id = self._channels.remove(channel)
        channel.kill()
        if channel_id is None or self._link is None:
            return  # never opened on the current websocket: nothing to close there
        reply = self._call(
            lambda corr: CloseRequest(corr, channel_id).to_bytes(), _ignore, "CLOSE", timeout
        )
        assert isinstance(reply, CloseReply)
        if reply.channel_id not in (0, channel_id):
            raise SpinnmanIOException(
                f"proxy closed channel {reply.channel_id} when asked to close {channel_id}"
            )

    # --------------------------------------------------------------- calls

    def _call(
        self,
        make_frame: Callable[[int], bytes],
        on_success: Callable[[ServerFrame], None],
        operation: str,
        timeout: float | None,
    ) -> ServerFrame:
        limit = self.call_timeout if timeout is None else timeout
        return self._calls.call(
            self._wait_connected, make_frame, on_success, operation, limit, self.connect_timeout
        )

    def _wait_connected(self, deadline: float, operation: str, limit: float) -> Link:
        with self._lock:
            while True:
                if self.failure is not None:
                    raise SpinnmanIOException(f"proxy websocket is closed: {self.failure}")
                if self._link is not None:
                    return self._link
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SpinnmanTimeoutException(
                        f"the proxy websocket to reconnect for {operation}", limit
                    )
                self._connected.wait(remaining)

    def _registrar(self, channel: Channel) -> Callable[[ServerFrame], None]:
        def register(reply: ServerFrame) -> None:
            if channel.is_closed:  # closed while (re)opening: do not resurrect it
                assert isinstance(reply, OpenReply | OpenUnboundReply)
                self._send_quietly(CloseRequest(0xFFFFFFFF, reply.channel_id).to_bytes())
                return
            channel.attach(reply)
            self._channels.add(channel)

        return register

    # --------------------------------------------------------------- receiver thread

    def _run(self) -> None:
        while not self._closing:
            link = self._link
            if link is None:
                break
            why = "connection lost"
            try:
                self._receive_loop(link)
            except Exception as error:  # the websocket broke, in any of a dozen ways
                if self._closing:
                    break
                why = str(error)
                log.info("proxy websocket %s dropped: %s", self.url, error)
            give_up = self._redial.verdict(link, why, self.reconnect_attempts)
            if give_up is not None:
                link.close()
                self._give_up(give_up)
                break
            if self._closing or not self._reconnect(link):
                break

    def _receive_loop(self, link: Link) -> None:
        """Hand out every message of ``link`` until it fails (this always raises)."""
        channel_of = self._channels.get
        answer = self._calls.answer
        # websocket-client answers pings itself and hands back control frames too, so
        # that pongs count as signs of life.
        receive = link.ws.recv_data
        monotonic = time.monotonic
        while True:
            try:
                opcode, data = receive(True)
            except websocket.WebSocketTimeoutException:
                continue  # idle: the pinger judges silence
            link.last_heard = monotonic()
            if opcode != _BINARY:
                if opcode == _CLOSE:  # already answered by the library
                    raise link.closed_by_server(data)
                continue  # pings (already answered), pongs, text
            try:
                if data[:4] == _MSG_OPCODE:  # the hot path: skip the opcode dispatch
                    frame: ServerFrame = Message.from_bytes(data)
                else:
                    frame = decode_server_frame(data)
            except WireFormatError as error:
                log.warning("ignoring undecodable proxy frame: %s", error)
                continue
            if isinstance(frame, Message):
                channel = channel_of(frame.channel_id)
                if channel is not None:
                    channel.deliver(frame.payload)
                continue
            if not answer(frame) and isinstance(frame, OpenReply | OpenUnboundReply):
                # The caller gave up waiting: do not leak the server's socket.
                self._send_quietly(CloseRequest(0xFFFFFFFF, frame.channel_id).to_bytes())

    def _send_quietly(self, frame: bytes) -> None:
        try:
            self.send_frames([frame])
        except SpinnmanIOException:
            pass

    def _reconnect(self, old: Link) -> bool:
        """Replace a dropped websocket and reopen every channel; False if it gave up."""
        with self._lock:
            if self._link is old:
                self._link = None
        reopen = self._channels.detach_all()
        old.close()
        self._calls.drop_all()
        try:
            link = self._connect_with_retries()
        except SpinnmanIOException as error:
            self._give_up(str(error))
            return False
        with self._lock:
            if self._closing:
                link.close()
                return False
            self._link = link
            self.reconnects += 1
            frames = [self._reopen(channel) for channel in reopen if not channel.is_closed]
            self._connected.notify_all()
        try:
            if frames:
                link.send(frames)
        except WS_ERRORS:
            link.abort()  # dropped again: the receiver will reconnect once more
        log.info("proxy websocket %s reconnected; reopening %d channels", self.url, len(reopen))
        return True

    def _reopen(self, channel: Channel) -> bytes:
        """Expect the answer to a reopen of ``channel``; return the request."""
        register = self._registrar(channel)

        def handle(reply: Reply) -> None:
            if isinstance(reply, OpenReply | OpenUnboundReply):
                register(reply)
                channel.reopened()
            elif isinstance(reply, ErrorReply):
                log.warning("could not reopen proxy channel: %s", reply.message)
                self._channels.remove(channel)
                channel.kill()
            # DROPPED: the next reconnection reopens it again.

        return channel.open_request(self._calls.expect(handle))

    def _give_up(self, why: str) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = why
            self._link = None
            self._connected.notify_all()
        log.warning("proxy websocket %s given up: %s", self.url, why)
        self._stop.set()
        self._fail_everything()

    def _fail_everything(self) -> None:
        channels = self._channels.clear()
        self._calls.drop_all()
        for channel in channels:
            channel.kill()

    # --------------------------------------------------------------- connecting

    def _connect_with_retries(self) -> Link:
        if self._closing:
            raise SpinnmanIOException(f"proxy websocket {self.url}: closed by the client")
        return self._dialler.connect(
            self.reconnect_attempts, self.reconnect_backoff, self.connect_timeout
        )

    def _ping(self) -> None:
        """The pinger thread: ping, and drop a websocket silent for three intervals."""
        while not self._stop.wait(self.ping_interval):
            link = self._link
            if link is not None and not link.keep_alive(3 * self.ping_interval):
                log.info(
                    "proxy websocket %s silent for too long, or a ping failed: dropped it", self.url
                )


def _ignore(_: ServerFrame) -> None:
    """A success hook that does nothing."""
