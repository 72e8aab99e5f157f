"""The client side of the Spalloc proxy websocket (``web-api.md`` §6).

One :class:`ProxyConnection` holds one websocket to ``/spalloc/proxy/<job>`` and
multiplexes every channel of the job over it:

* a receiver thread hands each MSG frame to its channel's queue (one queue put per
  packet, no other thread hop) and each other frame to the call waiting for its
  correlation id;
* OPEN, CLOSE and OPEN_UNBOUND are calls with a timeout; an ERROR frame raises
  :class:`ProxyError` carrying the server's text, and a CLOSE answered with channel 0
  (already closed) is not an error;
* a ping goes out every 30 s, and a websocket that stays silent for too long is
  dropped;
* a dropped websocket is reconnected (bounded attempts with back-off, renewing the
  session on a 401 handshake; see :mod:`pyspalloc.client.proxy_connect`) and every
  open channel is opened again. A bound channel gets a new server channel id behind
  the same :class:`Channel` object; receives that were waiting meanwhile just time
  out, so a retrying SCP engine carries on.

The websocket itself is websocket-client's (framing, masking, answering pings); proxy
frames are encoded and decoded with :mod:`pyspalloc.wire.proxy` only.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import websocket
from websocket import ABNF

from pyspalloc.client.channels import Channel, ProxyError, UnboundChannel
from pyspalloc.client.proxy_connect import (
    CONNECT_TIMEOUT,
    RECONNECT_ATTEMPTS,
    RECONNECT_BACKOFF,
    RETRY_CLOSE_CODES,
    STABLE_TIME,
    Dialler,
    Link,
)
from pyspalloc.exceptions import (
    SpinnmanIOException,
    SpinnmanTimeoutException,
)
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

__all__ = [
    "Channel",
    "ProxyConnection",
    "ProxyError",
    "UnboundChannel",
]

log = logging.getLogger(__name__)

#: Default time limit of an OPEN, CLOSE or OPEN_UNBOUND call, in seconds.
CALL_TIMEOUT: Final = 10.0
#: Seconds between pings.
PING_INTERVAL: Final = 30.0
_BINARY: Final = ABNF.OPCODE_BINARY
_CLOSE: Final = ABNF.OPCODE_CLOSE
#: What a failed send or receive on a websocket raises.
_WS_ERRORS: Final = (OSError, websocket.WebSocketException)

#: The first four bytes of every MSG frame (taken from the codec's own encoding).
_MSG_OPCODE: Final = Message(0, b"").to_bytes()[:4]
#: What a waiting call is handed when the websocket dropped under it.
_DROPPED: Final = object()

_Reply = ServerFrame | object
_Handler = Callable[[_Reply], None]


class ProxyConnection:
    """One proxy websocket for one job, multiplexing all its channels.

    Parameters
    ----------
    url:
        The job's ``proxy-ref`` (``ws://`` or ``wss://``).
    session:
        If given, every handshake goes through :meth:`Session.websocket`, which sends
        the session's credentials, maps the URL scheme and renews the session on 401;
        ``headers``, ``renew`` and ``sslopt`` are then not used.
    headers:
        Called before every handshake for the credential headers (``Cookie``,
        CSRF header, ``Authorization``); or a fixed mapping.
    renew:
        Called (once per reconnection) when a handshake is refused with 401 or 403,
        to log in again before the next attempt.
    sslopt:
        websocket-client SSL options (e.g. ``{"ca_certs": path}``).
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
        *,
        session: Session | None = None,
        headers: Callable[[], Mapping[str, str]] | Mapping[str, str] | None = None,
        renew: Callable[[], None] | None = None,
        sslopt: Mapping[str, Any] | None = None,
        call_timeout: float = CALL_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
        reconnect_backoff: float = RECONNECT_BACKOFF,
    ) -> None:
        self.url = url
        self._stop = threading.Event()
        self._dialler = Dialler(url, session, headers, renew, dict(sslopt or {}), self._stop)
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.reconnect_attempts = max(1, reconnect_attempts)
        self.reconnect_backoff = reconnect_backoff
        self._correlation = itertools.count()
        self._pending: dict[int, _Handler] = {}
        self._by_id: dict[int, Channel] = {}
        self._open: dict[int, Channel] = {}  # keyed by id(channel)
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
        self._call(channel._reopen_request, self._registrar(channel), "OPEN", timeout)
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
        self._call(channel._reopen_request, self._registrar(channel), "OPEN_UNBOUND", timeout)
        return channel

    def channels(self) -> list[Channel]:
        """The channels currently open (or reopening)."""
        with self._lock:
            return list(self._open.values())

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

    # --------------------------------------------------------------- sending

    def _send_frame(self, frame: bytes) -> None:
        self._send_frames([frame])

    def _send_frames(self, frames: list[bytes]) -> None:
        """Send binary frames (in one socket write); dropped while reconnecting."""
        link = self._link
        if link is None:
            if self.failure is not None:
                raise SpinnmanIOException(f"proxy websocket is closed: {self.failure}")
            return  # reconnecting: dropped, like a lost datagram
        try:
            link.send(frames)
        except _WS_ERRORS as error:
            if self.failure is not None:
                raise SpinnmanIOException(f"proxy websocket is closed: {self.failure}") from error
            log.debug("proxy send failed (%s); reconnect pending", error)
            link.abort()  # make sure the receiver notices and reconnects

    # --------------------------------------------------------------- calls

    def _call(
        self,
        make_frame: Callable[[int], bytes],
        on_success: Callable[[ServerFrame], None],
        operation: str,
        timeout: float | None,
    ) -> ServerFrame:
        """Send a request and wait for the frame with its correlation id.

        If the websocket drops while waiting, the request is sent again on the new one
        (the server closed everything of the old one), within the same deadline.
        """
        limit = self.call_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            link = self._wait_connected(deadline, operation, limit)
            replies: queue.SimpleQueue[_Reply] = queue.SimpleQueue()

            def handle(reply: _Reply, replies: queue.SimpleQueue[_Reply] = replies) -> None:
                # Runs on the receiver thread: register before anyone else can use it.
                if isinstance(reply, OpenReply | OpenUnboundReply):
                    on_success(reply)
                replies.put(reply)

            correlation_id = next(self._correlation) & 0xFFFFFFFF
            with self._lock:
                self._pending[correlation_id] = handle
            try:
                link.send([make_frame(correlation_id)])
            except _WS_ERRORS:
                link.abort()
                with self._lock:
                    self._pending.pop(correlation_id, None)
                time.sleep(0.01)  # let the receiver notice the drop and reconnect
                continue
            try:
                reply = replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                with self._lock:
                    gave_up = self._pending.pop(correlation_id, None) is not None
                if gave_up:
                    raise SpinnmanTimeoutException(
                        f"the answer to proxy {operation}", limit
                    ) from None
                # The answer came just as time ran out, and the handler has taken it
                # (an opened channel is registered by now): use it rather than leak it.
                try:
                    reply = replies.get(timeout=self.connect_timeout)
                except queue.Empty:
                    raise SpinnmanTimeoutException(
                        f"the answer to proxy {operation}", limit
                    ) from None
            if reply is _DROPPED:
                continue
            if isinstance(reply, ErrorReply):
                raise ProxyError(reply.message or f"unknown problem with {operation} call")
            assert isinstance(reply, OpenReply | CloseReply | OpenUnboundReply)
            return reply

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
            if channel._closed:  # closed while (re)opening: do not resurrect it
                assert isinstance(reply, OpenReply | OpenUnboundReply)
                self._send_quietly(CloseRequest(0xFFFFFFFF, reply.channel_id).to_bytes())
                return
            channel._adopt(reply)
            with self._lock:
                assert channel.channel_id is not None
                self._by_id[channel.channel_id] = channel
                self._open[id(channel)] = channel

        return register

    def _close_channel(self, channel: Channel, timeout: float | None) -> None:
        with self._lock:
            self._open.pop(id(channel), None)
            channel_id = channel.channel_id
            if channel_id is not None:
                self._by_id.pop(channel_id, None)
        channel._kill()
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

    # --------------------------------------------------------------- receiver thread

    def _run(self) -> None:
        quick_failures = 0
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
            if link.close_code is not None and link.close_code not in RETRY_CLOSE_CODES:
                # The service ended it on purpose (job over, refused, protocol error).
                link.close()
                self._give_up(why)
                break
            # A websocket that dies before saying anything, again and again, is refused.
            lasted = time.monotonic() - link.opened > STABLE_TIME
            quick_failures = 0 if link.heard or lasted else quick_failures + 1
            if quick_failures >= self.reconnect_attempts:
                link.close()
                self._give_up(f"{why} (and {quick_failures} reconnections failed at once)")
                break
            if self._closing or not self._reconnect(link):
                break

    def _receive_loop(self, link: Link) -> None:
        """Hand out every message of ``link`` until it fails (this always raises)."""
        by_id = self._by_id
        pending = self._pending
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
                channel = by_id.get(frame.channel_id)
                if channel is not None:
                    channel._queue.put(frame.payload)
                continue
            with self._lock:
                handler = pending.pop(frame.correlation_id, None)
            if handler is not None:
                handler(frame)
            elif isinstance(frame, OpenReply | OpenUnboundReply):
                # The caller gave up waiting: do not leak the server's socket.
                self._send_quietly(CloseRequest(0xFFFFFFFF, frame.channel_id).to_bytes())

    def _send_quietly(self, frame: bytes) -> None:
        try:
            self._send_frame(frame)
        except SpinnmanIOException:
            pass

    def _reconnect(self, old: Link) -> bool:
        """Replace a dropped websocket and reopen every channel; False if it gave up."""
        with self._lock:
            if self._link is old:
                self._link = None
            dropped = list(self._pending.values())
            self._pending.clear()
            self._by_id.clear()
            reopen = list(self._open.values())
            for channel in reopen:
                channel._detach()
        old.close()
        for handler in dropped:
            handler(_DROPPED)
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
            frames = [self._reopen(channel) for channel in reopen if not channel._closed]
            self._connected.notify_all()
        try:
            if frames:
                link.send(frames)
        except _WS_ERRORS:
            link.abort()  # dropped again: the receiver will reconnect once more
        log.info("proxy websocket %s reconnected; reopening %d channels", self.url, len(reopen))
        return True

    def _reopen(self, channel: Channel) -> bytes:
        """Register the answer handler of a reopen; return the request (lock held)."""
        register = self._registrar(channel)

        def handle(reply: _Reply) -> None:
            if isinstance(reply, OpenReply | OpenUnboundReply):
                register(reply)
                for hook in channel._reopen_hooks:
                    try:
                        hook()
                    except Exception:
                        log.exception("proxy channel reopen hook failed")
            elif isinstance(reply, ErrorReply):
                log.warning("could not reopen proxy channel: %s", reply.message)
                with self._lock:
                    self._open.pop(id(channel), None)
                channel._kill()
            # _DROPPED: the next reconnection reopens it again.

        correlation_id = next(self._correlation) & 0xFFFFFFFF
        self._pending[correlation_id] = handle
        return channel._reopen_request(correlation_id)

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
        with self._lock:
            dropped = list(self._pending.values())
            self._pending.clear()
            channels = list(self._open.values())
            self._open.clear()
            self._by_id.clear()
        for handler in dropped:
            handler(_DROPPED)
        for channel in channels:
            channel._kill()

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
