"""One v1 client connection: line framing, one request at a time, bounded buffers.

* A request line longer than ``max_line`` gets an exception line and the connection is
  closed; a line started but not finished within ``line_timeout`` closes it.
* At most ``max_pending_lines`` complete lines are read ahead; then reading pauses.
* Replies and notifications the client does not read stay in the transport's buffer:
  over ``max_unread`` bytes the requests wait (up to ``write_timeout``), and a
  notification that finds the buffer full drops the connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from pyspalloc.server.v1 import codec
from pyspalloc.server.v1.codec import V1Error

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
        self._wake = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._reading_paused = False
        self._line_timer: asyncio.TimerHandle | None = None
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
        self._task = asyncio.get_running_loop().create_task(self._serve())

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
        if self._lines:
            self._wake.set()

    def eof_received(self) -> bool | None:
        self._lines.append(b"")  # marks the end: answer what was sent, then close
        self._wake.set()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_line_timer()
        self._writable.set()
        self._wake.set()
        self.listener.forget(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # ---- notifications -----------------------------------------------------------
    def send_notifications(self, jobs: list[int], machines: list[str]) -> None:
        """Write ``jobs_changed`` / ``machines_changed`` lines, or drop a client that
        has left too much unread."""
        if self.closed or self.transport is None:
            return
        if not self._writable.is_set():
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
        self._wake.set()

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
    async def _serve(self) -> None:
        try:
            while not self.closed:
                if not self._lines:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                line = self._lines.popleft()
                if self._reading_paused and len(self._lines) < self.options.max_pending_lines:
                    self._reading_paused = False
                    assert self.transport is not None
                    self.transport.resume_reading()
                if not line:  # end of input
                    assert self.transport is not None
                    self.transport.close()
                    return
                answer = await self._answer(line)
                if self.closed or self.transport is None:
                    return
                self.transport.write(answer)
                if not self._writable.is_set():
                    try:
                        await asyncio.wait_for(self._writable.wait(), self.options.write_timeout)
                    except TimeoutError:
                        log.info("v1 client %s does not read its replies: disconnected", self.host)
                        self.abort()
                        return
        except asyncio.CancelledError:
            self.abort()
            raise

    async def _answer(self, line: bytes) -> bytes:
        try:
            request = codec.decode_request(line, self.options.max_args)
            result: Any = await self.listener.commands.run(request, self, self.host)
            return codec.reply(result)
        except V1Error as error:
            return codec.exception(str(error))
        except Exception as error:
            log.exception("v1 command failed")
            return codec.exception(f"unexpected server problem: {type(error).__name__}")
