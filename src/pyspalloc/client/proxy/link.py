"""The websocket link under a proxy connection: one websocket, and (re)opening it.

websocket-client does all of the websocket work (handshake, TLS, framing, masking,
answering pings); :class:`Link` only adds what the proxy needs to know about one
websocket (when it opened, whether it said anything, how the server closed it).
:class:`Dialler` opens links through the one handshake path,
:meth:`Session.websocket <pyspalloc.client.session.Session.websocket>` (the session's
credentials, URL mapping and renewal on 401/403), with bounded retries and back-off;
:class:`Redial` decides, after a link dropped, whether to open another or give up.

This module imports only :mod:`~pyspalloc.client.proxy.buffered` of the proxy package.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import websocket

from pyspalloc.client.proxy.buffered import BufferedWebSocket
from pyspalloc.exceptions import SpinnmanIOException

if TYPE_CHECKING:
    from pyspalloc.client.session import Session

__all__ = [
    "CONNECT_TIMEOUT",
    "RECONNECT_ATTEMPTS",
    "RECONNECT_BACKOFF",
    "RETRY_CLOSE_CODES",
    "STABLE_TIME",
    "Dialler",
    "Link",
    "Redial",
]

#: Default time limit of one websocket handshake, in seconds.
CONNECT_TIMEOUT: Final = 10.0
#: Reconnection attempts after the websocket drops, and the first back-off (doubling).
RECONNECT_ATTEMPTS: Final = 6
RECONNECT_BACKOFF: Final = 0.1
#: The longest back-off between two reconnection attempts.
MAX_BACKOFF: Final = 3.0
#: A websocket up this long (s), or that said anything, counts as having worked.
STABLE_TIME: Final = 10.0
#: Handshake statuses that mean "this will never work": stop reconnecting at once.
PERMANENT_STATUSES: Final = frozenset({400, 401, 403, 404, 410})
#: Close codes after which reconnecting makes sense (going away, restart, try later).
RETRY_CLOSE_CODES: Final = frozenset({1001, 1012, 1013})

#: Options of every proxy websocket: buffered reads and batched sends
#: (:mod:`~pyspalloc.client.proxy.buffered`), proxy frames are binary (no UTF-8 check),
#: sends come from several threads, and small frames must not wait for Nagle.
_SOCKET_OPTIONS: Final[dict[str, Any]] = {
    "class_": BufferedWebSocket,
    "skip_utf8_validation": True,
    "enable_multithread": True,
    "sockopt": [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
}


class Link:
    """One open proxy websocket (a websocket-client ``WebSocket``) and what it did.

    Sends may come from any thread (the library locks them); receives from one.

    Parameters
    ----------
    ws:
        The open websocket; its timeout bounds every send and each wait in a receive.
    """

    __slots__ = ("close_code", "close_reason", "last_heard", "opened", "ws")

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        #: The status code of the server's close frame, once one has come.
        self.close_code: int | None = None
        self.close_reason = ""
        #: When the websocket was opened (monotonic seconds).
        self.opened = time.monotonic()
        #: When anything (a message, a pong, a ping) was last received; the receiver
        #: sets it.
        self.last_heard = self.opened

    def send(self, frames: list[bytes]) -> None:
        """Send each of ``frames`` as one binary websocket message, in one socket write.

        Raises
        ------
        OSError, websocket.WebSocketException
            If the websocket failed.
        """
        ws = self.ws
        if isinstance(ws, BufferedWebSocket):
            ws.send_binary_frames(frames)
        else:
            for frame in frames:
                ws.send_binary(frame)

    @property
    def heard(self) -> bool:
        """Whether anything has been received."""
        return self.last_heard > self.opened

    def closed_by_server(self, data: bytes) -> websocket.WebSocketConnectionClosedException:
        """Note the server's close frame (already answered by the library).

        Returns the exception to raise for it.
        """
        self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
        self.close_reason = data[2:].decode("utf-8", "replace")
        return websocket.WebSocketConnectionClosedException(
            f"websocket closed by the server ({self.close_code} {self.close_reason})".rstrip()
        )

    def keep_alive(self, silence: float) -> bool:
        """Ping, or :meth:`abort` if nothing was heard for ``silence`` seconds.

        Returns False if the websocket was aborted (silent, or the ping failed).
        """
        if time.monotonic() - self.last_heard > silence:
            self.abort()
            return False
        try:
            self.ws.ping()  # the pong shows up in the receiver
        except (OSError, websocket.WebSocketException):
            self.abort()
            return False
        return True

    def abort(self) -> None:
        """Shut the socket down so that a blocked receive (and any send) fails at once.

        ``WebSocket.abort`` does nothing once a close frame has been sent, so the
        socket is shut down directly.
        """
        sock = self.ws.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def hang_up(self) -> None:
        """Say goodbye (1000) if still possible, then :meth:`abort`.

        ``WebSocket.close`` would wait for the server's answering close frame on the
        receiver's behalf, so the close frame is sent on its own.
        """
        if self.ws.connected:
            try:
                self.ws.send_close()
            except (OSError, websocket.WebSocketException):
                pass
        self.abort()

    def close(self) -> None:
        """:meth:`hang_up` and release the socket."""
        self.hang_up()
        cast(Any, self.ws).shutdown()  # untyped in websocket-client


@dataclass
class Dialler:
    """Opens proxy websockets to one URL through a :class:`Session`.

    Parameters
    ----------
    url:
        The job's ``proxy-ref`` (``ws://`` or ``wss://``).
    session:
        Every handshake goes through :meth:`Session.websocket`, which sends the
        session's credentials, maps the URL scheme and renews the session once when
        a handshake is refused with 401 or 403.
    stop:
        Set to abandon the back-off sleeps of :meth:`connect`.
    """

    url: str
    session: Session
    stop: threading.Event = field(default_factory=threading.Event)

    def connect(self, attempts: int, backoff: float, timeout: float) -> Link:
        """Open a websocket, trying up to ``attempts`` times with doubling back-off.

        A refusal that will not change (:data:`PERMANENT_STATUSES`, after the session's
        own renewal) ends the attempts at once.

        Raises
        ------
        SpinnmanIOException
            If every attempt failed, a refusal was permanent, or :attr:`stop` was set.
        """
        problem = "no attempt made"
        for attempt in range(max(1, attempts)):
            if self.stop.is_set():
                break
            if attempt:
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, MAX_BACKOFF)
            try:
                return Link(self.handshake(timeout))
            except websocket.WebSocketBadStatusException as error:
                status = error.status_code
                problem = f"handshake refused with HTTP {status}"
                if status in PERMANENT_STATUSES:
                    break
            except (OSError, websocket.WebSocketException) as error:
                problem = f"cannot connect: {error}"
        raise SpinnmanIOException(f"proxy websocket {self.url}: {problem}")

    def handshake(self, timeout: float) -> websocket.WebSocket:
        """Open one websocket; its timeout then bounds sends and receive waits.

        Raises
        ------
        websocket.WebSocketBadStatusException
            If the service refused the handshake.
        OSError, websocket.WebSocketException
            If it failed otherwise.
        """
        try:
            return self.session.websocket(self.url, timeout=timeout, **_SOCKET_OPTIONS)
        except SpinnmanIOException as error:
            cause = error.__cause__
            if isinstance(cause, websocket.WebSocketBadStatusException | OSError):
                raise cause from error
            raise websocket.WebSocketException(str(error)) from error


@dataclass
class Redial:
    """Whether to reopen a dropped link, or give up on the proxy."""

    #: Links in a row that died before saying anything (or lasting long).
    quick_failures: int = 0

    def verdict(self, link: Link, why: str, attempts: int) -> str | None:
        """Why to give up after ``link`` dropped for ``why``; None to reconnect.

        ``attempts`` links in a row that die before saying anything (and before
        :data:`STABLE_TIME`) mean the service is refusing.
        """
        if link.close_code is not None and link.close_code not in RETRY_CLOSE_CODES:
            # The service ended it on purpose (job over, refused, protocol error).
            return why
        # A websocket that dies before saying anything, again and again, is refused.
        lasted = time.monotonic() - link.opened > STABLE_TIME
        self.quick_failures = 0 if link.heard or lasted else self.quick_failures + 1
        if self.quick_failures >= attempts:
            return f"{why} (and {self.quick_failures} reconnections failed at once)"
        return None
