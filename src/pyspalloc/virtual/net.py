"""Lean non-blocking UDP endpoints driven by an asyncio loop's reader callbacks."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import sys
import time
from collections.abc import Callable

__all__ = ["UdpEndpoint"]

_log = logging.getLogger(__name__)
#: Datagrams read per readiness callback before yielding to other sockets.
_BATCH = 64
_MAX_DATAGRAM = 4096

Handler = Callable[[bytes, tuple[str, int]], None]
#: Linux: ask the kernel for each datagram's arrival time (a struct timespec).
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_KERNEL_TIMES = sys.platform.startswith("linux")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


class UdpEndpoint:
    """A UDP socket bound to ``(ip, port)`` that hands each datagram to ``handler``.

    The handler runs in the event loop; any exception it raises is logged and the
    endpoint keeps serving. Sending never blocks: a datagram that cannot be queued is
    dropped, as UDP may. With ``timestamps``, :attr:`arrival` holds the wall-clock time
    (``time.time()``) at which the datagram being handled reached the host (the kernel's
    record on Linux, else when it was read).
    """

    __slots__ = (
        "_loop",
        "_outbox",
        "_timestamps",
        "address",
        "arrival",
        "handler",
        "replying",
        "sock",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ip: str,
        port: int,
        handler: Handler,
        *,
        timestamps: bool = False,
    ) -> None:
        self._loop = loop
        self.handler = handler
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((ip, port))
        except OSError as error:
            sock.close()
            raise OSError(error.errno, f"cannot bind UDP {ip}:{port}: {error.strerror}") from None
        self.sock = sock
        self.address = (ip, port)
        self._timestamps = timestamps and _KERNEL_TIMES
        if self._timestamps:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self.arrival = 0.0
        # While a batch of received datagrams is handled, replies are queued here and
        # sent together afterwards, so the peer is not woken once per reply.
        self._outbox: list[tuple[bytes, tuple[str, int]]] | None = None
        #: Called after a batch of datagrams was handled, just before the replies leave.
        self.replying: Callable[[], None] | None = None
        loop.add_reader(sock.fileno(), self._ready)

    def _receive(self) -> tuple[bytes, tuple[str, int]]:
        """One datagram, with :attr:`arrival` set from the kernel's timestamp."""
        data, ancillary, _, sender = self.sock.recvmsg(_MAX_DATAGRAM, _ANCILLARY)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
                self.arrival = seconds + nanoseconds * 1e-9
                break
        else:
            self.arrival = time.time()
        return data, sender

    def _ready(self) -> None:
        recv = self._receive if self._timestamps else self._receive_plain
        outbox: list[tuple[bytes, tuple[str, int]]] = []
        self._outbox = outbox
        try:
            for _ in range(_BATCH):
                try:
                    data, sender = recv()
                except OSError:  # BlockingIOError: nothing more to read
                    break
                try:
                    self.handler(data, sender)
                except Exception:  # a bad datagram must never stop the board
                    _log.exception("virtual endpoint %s:%d: error handling datagram", *self.address)
        finally:
            self._outbox = None
            if self.replying is not None:
                self.replying()
            send = self.sock.sendto
            for data, address in outbox:
                try:
                    send(data, address)
                except OSError:
                    pass

    def _receive_plain(self) -> tuple[bytes, tuple[str, int]]:
        data, sender = self.sock.recvfrom(_MAX_DATAGRAM)
        return data, sender

    @property
    def in_batch(self) -> bool:
        """Whether a batch of received datagrams is being handled (replies wait)."""
        return self._outbox is not None

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        """Send one datagram (dropped silently if it cannot be sent)."""
        outbox = self._outbox
        if outbox is not None:
            outbox.append((data, address))
            return
        try:
            self.sock.sendto(data, address)
        except OSError:
            pass

    def close(self) -> None:
        """Stop reading and close the socket."""
        if self.sock.fileno() >= 0:
            try:
                self._loop.remove_reader(self.sock.fileno())
            except (RuntimeError, ValueError):
                pass
            self.sock.close()
