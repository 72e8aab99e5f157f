"""One v1 client connection: line framing, one request at a time, bounded buffers.

* A request line longer than ``max_line`` gets an exception line and the connection is
  closed; a line started but not finished within ``line_timeout`` closes it.
* At most ``max_pending_lines`` complete lines are read ahead; then reading pauses.
* Replies and notifications the client does not read stay in the transport's buffer:
  over ``max_unread`` bytes the requests wait (up to ``write_timeout``), and a
  notification that finds the buffer full drops the connection.

Lines are answered in order as they arrive: a command answered on the event loop is
answered within :meth:`V1Connection.data_received`; one that runs on a worker thread
holds the lines behind it until its reply is written.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from pyspalloc.server.v1 import codec
from pyspalloc.server.v1.codec import V1Error
from pyspalloc.server.v1.commands import Pending

if TYPE_CHECKING:
    from pyspalloc.server.v1.listener import V1Listener

log = logging.getLogger(__name__)


class V1Connection(asyncio.Protocol):
    """The protocol object of one client."""

    def __init__(self, listener: V1Listener) -> None:
        self.listener = listener
        self.options = listener.options
        self.host = ""
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._lines: deque[bytes] = deque()
        self._writable = True
        self._reading_paused = False
        self._line_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        #: the command running on a worker thread (the lines behind it wait)
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    # ---- asyncio callbacks -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.host = str(peer[0]) if peer else ""
        if not self.listener.admit(self):
            self.closed = True
            transport.abort()
            return
        transport.set_write_buffer_limits(high=self.options.max_unread)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # what the kernel holds for a client that does not read
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.options.socket_buffer)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        start = len(self._buffer)
        self._buffer += data
        newline = self._buffer.find(b"\n", start)
        while newline >= 0:
            line = bytes(self._buffer[:newline]).strip()
            del self._buffer[: newline + 1]
            if len(line) > self.options.max_line:
                break
            if line:
                self._lines.append(line)
            newline = self._buffer.find(b"\n")
        else:
            line = b""
        if len(line) > self.options.max_line or len(self._buffer) > self.options.max_line:
            self._fatal(f"request line too long (limit {self.options.max_line} bytes)")
            return
        if len(self._lines) >= self.options.max_pending_lines and not self._reading_paused:
            self._reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._arm_line_timer()
        self._pump()

    def eof_received(self) -> bool | None:
        self._lines.append(b"")  # marks the end: answer what was sent, then close
        self._pump()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_line_timer()
        self._cancel_write_timer()
        self.listener.forget(self)

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._cancel_write_timer()
        self._pump()

    # ---- notifications -----------------------------------------------------------
    def send_notifications(self, jobs: list[int], machines: list[str]) -> None:
        """Write ``jobs_changed`` / ``machines_changed`` lines, or drop a client that
        has left too much unread."""
        if self.closed or self.transport is None:
            return
        if not self._writable:
            log.info("v1 client %s does not read its notifications: disconnected", self.host)
            self.abort()
            return
        if jobs:
            self.transport.write(codec.encode({"jobs_changed": jobs}))
        if machines:
            self.transport.write(codec.encode({"machines_changed": machines}))

    # ---- closing -----------------------------------------------------------------
    def abort(self) -> None:
        """Drop the connection now."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fatal(self, message: str) -> None:
        """Send one exception line and close."""
        if self.transport is not None and not self.closed:
            self.transport.write(codec.exception(message))
            self.transport.close()
        self.closed = True
        self._buffer.clear()
        self._lines.clear()
        self._cancel_line_timer()
        self._cancel_write_timer()

    def _arm_line_timer(self) -> None:
        if not self._buffer:
            self._cancel_line_timer()
        elif self._line_timer is None:
            loop = asyncio.get_running_loop()
            self._line_timer = loop.call_later(self.options.line_timeout, self._line_expired)

    def _cancel_line_timer(self) -> None:
        if self._line_timer is not None:
            self._line_timer.cancel()
            self._line_timer = None

    def _line_expired(self) -> None:
        self._line_timer = None
        if self._buffer and not self.closed:
            self._fatal(f"request line not finished within {self.options.line_timeout:g} s")

    # ---- requests ----------------------------------------------------------------
    def _pump(self) -> None:
        """Answer the waiting lines, in order, for as long as the client reads replies."""
        while self._lines and self._task is None and not self.closed:
            if not self._writable:
                self._arm_write_timer()
                return
            line = self._lines.popleft()
            if self._reading_paused and len(self._lines) < self.options.max_pending_lines:
                self._reading_paused = False
                assert self.transport is not None
                self.transport.resume_reading()
            if not line:  # end of input
                assert self.transport is not None
                self.transport.close()
                return
            answer = self._answer(line)
            if isinstance(answer, Pending):
                self._task = asyncio.get_running_loop().create_task(self._finish(answer))
                return
            self._reply(answer)

    def _answer(self, line: bytes) -> bytes | Pending:
        """The reply line to ``line``, or the command still running for it."""
        try:
            request = codec.decode_request(line, self.options.max_args)
            result: Any = self.listener.commands.start(request, self, self.host)
        except Exception as error:
            return self._failure(error)
        return result if isinstance(result, Pending) else codec.reply(result)

    async def _finish(self, pending: Pending) -> None:
        """Reply once a command running on a worker thread is done; then go on."""
        try:
            answer = codec.reply(await pending.result)
        except asyncio.CancelledError:
            self.abort()
            raise
        except Exception as error:
            answer = self._failure(error)
        self._task = None
        self._reply(answer)
        self._pump()

    def _failure(self, error: Exception) -> bytes:
        if isinstance(error, V1Error):
            return codec.exception(str(error))
        log.error("v1 command failed", exc_info=error)
        return codec.exception(f"unexpected server problem: {type(error).__name__}")

    def _reply(self, answer: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(answer)

    def _arm_write_timer(self) -> None:
        if self._write_timer is None:
            loop = asyncio.get_running_loop()
            self._write_timer = loop.call_later(self.options.write_timeout, self._write_expired)

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_expired(self) -> None:
        self._write_timer = None
        if not self._writable and not self.closed:
            log.info("v1 client %s does not read its replies: disconnected", self.host)
            self.abort()
