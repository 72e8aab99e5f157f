"""websocket-client's ``WebSocket``, tuned for many small proxy frames.

All websocket framing stays websocket-client's: frames are parsed by its
``frame_buffer`` and built (and masked) by ``ABNF.create_frame(...).format()``. This
module changes only how bytes reach and leave the socket:

* **Buffered reads.** The library's frame parser asks for each frame's 2-byte header,
  its extended length and its payload separately. :class:`BufferedWebSocket` serves
  those small reads from one large socket read, so a burst of replies costs one TLS
  read instead of three per frame.
* **Batched writes.** :meth:`BufferedWebSocket.send_binary_frames` formats several
  binary frames and writes them with one socket send under the library's send lock.
* **Pooled mask keys.** Every client frame needs 4 random bytes; they are taken from
  ``os.urandom`` 4 KiB at a time instead of one system call per frame.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any, Final

import websocket
from websocket import ABNF

__all__ = ["READ_SIZE", "BufferedWebSocket", "MaskKeys"]

#: How much one socket read asks for.
READ_SIZE: Final = 65536
_BINARY: Final = ABNF.OPCODE_BINARY


class MaskKeys:
    """A thread-safe source of websocket mask keys drawn from ``os.urandom`` in bulk.

    Parameters
    ----------
    pool:
        Bytes fetched from ``os.urandom`` at a time.
    """

    __slots__ = ("_lock", "_pool", "_pool_size", "_position")

    def __init__(self, pool: int = 4096) -> None:
        self._pool_size = pool
        self._pool = b""
        self._position = 0
        self._lock = threading.Lock()

    def __call__(self, length: int) -> bytes:
        """``length`` random bytes (websocket-client asks for 4)."""
        with self._lock:
            start = self._position
            end = start + length
            if end > len(self._pool):
                self._pool = os.urandom(max(self._pool_size, length))
                start, end = 0, length
            self._position = end
            return self._pool[start:end]


class BufferedWebSocket(websocket.WebSocket):
    """A ``websocket.WebSocket`` with buffered reads and batched binary sends.

    Pass it as ``class_`` to ``websocket.create_connection``. Reads (by one thread at a
    time, as for any ``WebSocket``) are served from a buffer filled by one socket read
    of up to :data:`READ_SIZE` bytes; the handshake reads the socket directly and never
    past the end of the handshake, so nothing is lost between the two.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer = b""
        self._position = 0
        self.set_mask_key(MaskKeys())  # type: ignore[no-untyped-call]

    def _recv(self, bufsize: int) -> bytes:
        buffer = self._buffer
        position = self._position
        if position >= len(buffer):
            # The library's own read: its timeouts, TLS retries and closed-socket errors.
            buffer = super()._recv(READ_SIZE)  # type: ignore[no-untyped-call]
            position = 0
            self._buffer = buffer
        end = position + bufsize
        self._position = end
        if position == 0 and end >= len(buffer):
            return buffer
        return buffer[position:end]

    def send_binary_frames(self, payloads: Iterable[bytes]) -> int:
        """Send each payload as one binary frame, all in one socket send.

        Returns the number of bytes written. Raises what ``WebSocket.send`` raises.
        """
        mask_key = self.get_mask_key
        frames = []
        for payload in payloads:
            frame = ABNF.create_frame(payload, _BINARY)
            if mask_key:
                frame.get_mask_key = mask_key
            frames.append(frame.format())
        data = b"".join(frames) if len(frames) != 1 else frames[0]
        length = len(data)
        with self.lock:
            view = memoryview(data)
            while view:
                sent = self._send(view)  # type: ignore[arg-type]
                if not sent:  # the socket stayed unwritable for its whole timeout
                    raise websocket.WebSocketTimeoutException("timed out sending frames")
                view = view[sent:]
        return length
