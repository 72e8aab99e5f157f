"""The correlation-id calls of a proxy websocket: OPEN, CLOSE and OPEN_UNBOUND.

A call sends a request carrying a fresh correlation id and waits for the server frame
carrying the same id; the host's receiver thread hands every frame that is not a MSG
to :meth:`Calls.answer`. An ERROR answer raises :class:`ProxyError` with the server's
text. When the websocket drops, :meth:`Calls.drop_all` hands every waiting call
:data:`DROPPED`, and :meth:`Calls.call` sends its request again on the next websocket,
within the same deadline.

This module imports only :mod:`~pyspalloc.client.proxy.link` of the proxy package.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Final, TypeAlias

import websocket

from pyspalloc.client.proxy.link import Link
from pyspalloc.exceptions import SpallocException, SpinnmanIOException, SpinnmanTimeoutException
from pyspalloc.wire.proxy import (
    CloseReply,
    ErrorReply,
    OpenReply,
    OpenUnboundReply,
    ServerFrame,
)

__all__ = ["DROPPED", "WS_ERRORS", "Answer", "Calls", "Handler", "ProxyError", "Reply"]

#: What a waiting call is handed when the websocket dropped under it.
DROPPED: Final = object()
#: What a failed send or receive on a websocket raises.
WS_ERRORS: Final = (OSError, websocket.WebSocketException)

#: What a call's handler is given: the answering frame, or :data:`DROPPED`.
Reply: TypeAlias = ServerFrame | object
#: Takes the answer to one correlation id (on the receiver thread; must not block).
Handler: TypeAlias = Callable[[Reply], None]
#: A server frame that answers a call (every server frame but MSG).
Answer: TypeAlias = OpenReply | CloseReply | OpenUnboundReply | ErrorReply


class ProxyError(SpallocException, SpinnmanIOException):
    """The proxy refused an OPEN, CLOSE or OPEN_UNBOUND with an ERROR frame.

    Parameters
    ----------
    message:
        The text the server sent.
    """


class Calls:
    """The calls of one proxy connection waiting for their answers, by correlation id.

    Thread-safe; its lock is held only to change the table, never while a handler runs.
    """

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._pending: dict[int, Handler] = {}
        self._lock = threading.Lock()

    def expect(self, handler: Handler) -> int:
        """A fresh correlation id whose answer will go to ``handler``."""
        correlation_id = next(self._ids) & 0xFFFFFFFF
        with self._lock:
            self._pending[correlation_id] = handler
        return correlation_id

    def forget(self, correlation_id: int) -> bool:
        """Stop waiting for ``correlation_id``; False if its answer was already taken."""
        with self._lock:
            return self._pending.pop(correlation_id, None) is not None

    def answer(self, frame: Answer) -> bool:
        """Hand ``frame`` to the call waiting for its correlation id; False if none was."""
        with self._lock:
            handler = self._pending.pop(frame.correlation_id, None)
        if handler is None:
            return False
        handler(frame)
        return True

    def drop_all(self) -> None:
        """Hand every waiting call :data:`DROPPED` (the websocket dropped or closed)."""
        with self._lock:
            dropped = list(self._pending.values())
            self._pending.clear()
        for handler in dropped:
            handler(DROPPED)

    def call(
        self,
        connected: Callable[[float, str, float], Link],
        make_frame: Callable[[int], bytes],
        on_success: Callable[[ServerFrame], None],
        operation: str,
        limit: float,
        grace: float,
    ) -> ServerFrame:
        """Send a request and wait for the frame with its correlation id.

        If the websocket drops while waiting, the request is sent again on the new one
        (the server closed everything of the old one), within the same deadline.

        Parameters
        ----------
        connected:
            ``connected(deadline, operation, limit)`` waits for the websocket to be up
            and returns its link (raising if it will not be, in time).
        make_frame:
            Makes the request for a correlation id.
        on_success:
            Runs on the receiver thread with an OPEN or OPEN_UNBOUND answer, before
            anyone else can see it (to register the channel).
        operation:
            The call's name, for errors.
        limit:
            Seconds to wait for the answer.
        grace:
            How long to wait for an answer that a handler took just as time ran out.

        Raises
        ------
        ProxyError
            If the server answered with ERROR.
        SpinnmanTimeoutException
            If no answer came in time.
        """
        deadline = time.monotonic() + limit
        while True:
            link = connected(deadline, operation, limit)
            replies: queue.SimpleQueue[Reply] = queue.SimpleQueue()

            def handle(reply: Reply, replies: queue.SimpleQueue[Reply] = replies) -> None:
                # Runs on the receiver thread: register before anyone else can use it.
                if isinstance(reply, OpenReply | OpenUnboundReply):
                    on_success(reply)
                replies.put(reply)

            correlation_id = self.expect(handle)
            try:
                link.send([make_frame(correlation_id)])
            except WS_ERRORS:
                link.abort()
                self.forget(correlation_id)
                time.sleep(0.01)  # let the receiver notice the drop and reconnect
                continue
            try:
                reply = replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                if self.forget(correlation_id):
                    raise SpinnmanTimeoutException(
                        f"the answer to proxy {operation}", limit
                    ) from None
                # The answer came just as time ran out, and the handler has taken it
                # (an opened channel is registered by now): use it rather than leak it.
                try:
                    reply = replies.get(timeout=grace)
                except queue.Empty:
                    raise SpinnmanTimeoutException(
                        f"the answer to proxy {operation}", limit
                    ) from None
            if reply is DROPPED:
                continue
            if isinstance(reply, ErrorReply):
                raise ProxyError(reply.message or f"unknown problem with {operation} call")
            assert isinstance(reply, OpenReply | CloseReply | OpenUnboundReply)
            return reply
