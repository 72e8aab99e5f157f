"""Lean non-blocking UDP endpoints driven by an asyncio loop's reader callbacks."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

__all__ = ["UdpEndpoint"]

_log = logging.getLogger(__name__)
#: Datagrams read per readiness callback before yielding to other sockets.
_BATCH = 64
_MAX_DATAGRAM = 4096

Handler = Callable[[bytes, tuple[str, int]], None]


class UdpEndpoint:
    """A UDP socket bound to ``(ip, port)`` that hands each datagram to ``handler``.

    The handler runs in the event loop; any exception it raises is logged and the
    endpoint keeps serving. Sending never blocks: a datagram that cannot be queued is
    dropped, as UDP may.
    """

    __slots__ = ("_loop", "_outbox", "address", "after_batch", "handler", "sock")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, ip: str, port: int, handler: Handler
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
        # While a batch of received datagrams is handled, replies are queued here and
        # sent together afterwards, so the peer is not woken once per reply.
        self._outbox: list[tuple[bytes, tuple[str, int]]] | None = None
        #: Called once the replies to a batch of datagrams have been sent.
        self.after_batch: Callable[[], None] | None = None
        loop.add_reader(sock.fileno(), self._ready)

    def _ready(self) -> None:
        recv = self.sock.recvfrom
        outbox: list[tuple[bytes, tuple[str, int]]] = []
        self._outbox = outbox
        try:
            for _ in range(_BATCH):
                try:
                    data, sender = recv(_MAX_DATAGRAM)
                except OSError:  # BlockingIOError: nothing more to read
                    break
                try:
                    self.handler(data, sender)
                except Exception:  # a bad datagram must never stop the board
                    _log.exception("virtual endpoint %s:%d: error handling datagram", *self.address)
        finally:
            self._outbox = None
            send = self.sock.sendto
            for data, address in outbox:
                try:
                    send(data, address)
                except OSError:
                    pass
            if self.after_batch is not None:
                self.after_batch()

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
