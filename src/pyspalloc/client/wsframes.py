"""Lean RFC 6455 framing over a websocket that websocket-client has opened.

websocket-client does the handshake (TLS, credentials, proxies); after that the proxy
client reads and writes frames itself, because the library's per-frame path (three
socket reads per frame through several wrapper layers) costs more than everything else
on the proxy's hot path. :meth:`FrameSocket.receive` reads whatever the socket has
(often several frames) in one system call and returns every complete message.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from typing import Any, Final, cast

import websocket

__all__ = ["BINARY", "CLOSE", "PING", "PONG", "ConnectionLost", "FrameSocket"]

CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

#: Bytes asked of the socket per read. Python allocates this much for every read, so
#: it stays well under malloc's mmap threshold (128 KiB): a 256 KiB read costs ~7x more.
READ_SIZE: Final = 65536
#: Bytes of os.urandom fetched at a time for masking keys.
ENTROPY_BLOCK: Final = 4096
#: Largest message accepted from the server (proxy frames are tiny).
MAX_MESSAGE: Final = 16 * 1024 * 1024


class ConnectionLost(OSError):
    """The websocket is closed, broken or spoke nonsense."""


def mask(key: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (RFC 6455 §5.3)."""
    size = len(data)
    if not size:
        return b""
    stream = (key * ((size + 3) // 4))[:size]
    value = int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")
    return value.to_bytes(size, "little")


def _header(opcode: int, size: int) -> bytes:
    first = 0x80 | opcode
    if size < 126:
        return bytes((first, 0x80 | size))
    if size < 65536:
        return struct.pack("!BBH", first, 0x80 | 126, size)
    return struct.pack("!BBQ", first, 0x80 | 127, size)


class FrameSocket:
    """Frames on the TCP (or TLS) socket of an open websocket-client ``WebSocket``.

    Sends may come from any thread; :meth:`receive` from one thread only.

    Parameters
    ----------
    ws:
        The open websocket; its socket timeout bounds every send and read.
    """

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        sock = cast(Any, ws).sock
        if sock is None:
            raise ConnectionLost("websocket is not connected")
        self._sock: socket.socket = sock
        self._send_lock = threading.Lock()
        self._entropy = b""  # fresh masking keys, 4 bytes each, from os.urandom
        self._entropy_at = 0
        self._buffer = bytearray()
        self._fragments: list[bytes] | None = None
        self._fragment_opcode = BINARY
        self._peer_closed: str | None = None
        #: The status code of the server's close frame, once one has come.
        self.close_code: int | None = None
        #: Whether any message has been received.
        self.heard = False
        #: When the websocket was opened (monotonic seconds).
        self.opened = time.monotonic()
        self.closed = False

    # ------------------------------------------------------------------ sending

    def send(self, opcode: int, payload: bytes) -> None:
        """Send one whole message (masked, as a client must).

        Raises
        ------
        ConnectionLost
            If the socket failed or timed out (the stream is then unusable).
        """
        try:
            with self._send_lock:
                at = self._entropy_at
                if at >= len(self._entropy):
                    self._entropy, at = os.urandom(ENTROPY_BLOCK), 0
                key = self._entropy[at : at + 4]
                self._entropy_at = at + 4
                self._sock.sendall(_header(opcode, len(payload)) + key + mask(key, payload))
        except OSError as error:
            self.abort()
            raise ConnectionLost(f"websocket send failed: {error}") from error

    def send_binary(self, payload: bytes) -> None:
        """Send one binary message."""
        self.send(BINARY, payload)

    def ping(self) -> None:
        """Send a ping."""
        self.send(PING, b"")

    def send_close(self, code: int = 1000) -> None:
        """Send a close frame (errors are ignored)."""
        try:
            self.send(CLOSE, struct.pack("!H", code))
        except ConnectionLost:
            pass

    def abort(self) -> None:
        """Shut the socket down so that a blocked :meth:`receive` returns at once."""
        self.closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Shut down and release the socket."""
        self.abort()
        cast(Any, self.ws).shutdown()

    # ---------------------------------------------------------------- receiving

    def receive(self) -> list[tuple[int, bytes]]:
        """Read from the socket once and return the complete messages it finished.

        Pings are answered here. Returns an empty list when the read timed out or
        only part of a frame came.

        Raises
        ------
        ConnectionLost
            On a close frame, end of stream, socket error or a protocol violation.
        """
        if self._peer_closed is not None:
            raise ConnectionLost(self._peer_closed)
        try:
            chunk = self._sock.recv(READ_SIZE)
        except TimeoutError:
            return []
        except OSError as error:
            raise ConnectionLost(f"websocket read failed: {error}") from error
        if not chunk:
            raise ConnectionLost("websocket closed by the server")
        buffer = self._buffer
        buffer += chunk
        messages: list[tuple[int, bytes]] = []
        start = 0
        size = len(buffer)
        while size - start >= 2 and self._peer_closed is None:
            first = buffer[start]
            second = buffer[start + 1]
            length = second & 0x7F
            at = start + 2
            if length == 126:
                if size - at < 2:
                    break
                length = int.from_bytes(buffer[at : at + 2], "big")
                at += 2
            elif length == 127:
                if size - at < 8:
                    break
                length = int.from_bytes(buffer[at : at + 8], "big")
                at += 8
            key = b""
            if second & 0x80:
                if size - at < 4:
                    break
                key = bytes(buffer[at : at + 4])
                at += 4
            if length > MAX_MESSAGE:
                raise ConnectionLost(f"websocket frame of {length} bytes is too long")
            if size - at < length:
                break
            payload = bytes(buffer[at : at + length])
            if key:
                payload = mask(key, payload)
            start = at + length
            self._frame(first & 0x80, first & 0x0F, payload, messages)
        del buffer[:start]
        if self._peer_closed is not None and not messages:
            raise ConnectionLost(self._peer_closed)
        if messages:
            self.heard = True
        return messages

    def _frame(self, fin: int, opcode: int, payload: bytes, out: list[tuple[int, bytes]]) -> None:
        if opcode in (BINARY, TEXT):
            if fin:
                out.append((opcode, payload))
            else:
                self._fragments = [payload]
                self._fragment_opcode = opcode
        elif opcode == CONTINUATION:
            if self._fragments is None:
                raise ConnectionLost("websocket continuation frame without a start")
            self._fragments.append(payload)
            if fin:
                out.append((self._fragment_opcode, b"".join(self._fragments)))
                self._fragments = None
        elif opcode == PING:
            self.send(PONG, payload)
            out.append((PING, payload))
        elif opcode == PONG:
            out.append((PONG, payload))
        elif opcode == CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            reason = payload[2:].decode("utf-8", "replace")
            self.close_code = code
            self.send_close()
            self._peer_closed = f"websocket closed by the server ({code} {reason})"
            # messages before the close are still delivered; the next receive raises
        else:
            raise ConnectionLost(f"websocket frame with unknown opcode {opcode}")
