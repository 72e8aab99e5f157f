"""Connections: anything that can send and receive whole datagrams.

The SCP engine and every operation in :mod:`pyspalloc.transceiver` only use the small
:class:`Connection` protocol, so a proxied websocket channel (the client's) works exactly
like a UDP socket. :class:`UDPConnection` is the plain-UDP implementation.
"""

from __future__ import annotations

import socket
from typing import Protocol, runtime_checkable

from pyspalloc.exceptions import SpinnmanIOException, SpinnmanTimeoutException
from pyspalloc.wire.consts import SCP_PORT

__all__ = ["Connection", "UDPConnection"]

#: Receive buffer asked of the kernel for every UDP socket.
RECEIVE_BUFFER_SIZE = 1024 * 1024
#: Largest datagram read in one go.
MAX_DATAGRAM = 65535


@runtime_checkable
class Connection(Protocol):
    """What the SCP engine needs of a connection to one board.

    ``chip_x`` and ``chip_y`` are the coordinates of the chip at the far end (a board's
    Ethernet chip; 255, 255 when unknown). Implementations may also offer ``remote_ip``
    (the board's address as a string), which :class:`~.Transceiver` uses to name boards,
    two optional methods the engine uses when present: ``send_many(datas)`` (send
    several datagrams in order, at once) and ``has_input()`` (whether a ``receive``
    would return at once; it must be cheap), and ``preferred_window`` (the SCP window a
    :class:`~.Transceiver` uses by default over it; plain UDP gets
    :data:`~pyspalloc.transceiver.engine.DEFAULT_WINDOW`).
    """

    chip_x: int
    chip_y: int

    def send(self, data: bytes) -> None:
        """Send one datagram; raise :class:`SpinnmanIOException` if that fails."""

    def receive(self, timeout: float | None = None) -> bytes:
        """Return the next datagram.

        Waits at most ``timeout`` seconds (``None``: forever) and then raises
        :class:`SpinnmanTimeoutException`; other failures raise
        :class:`SpinnmanIOException`.
        """

    def close(self) -> None:
        """Release the connection; further use raises :class:`SpinnmanIOException`."""


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError as error:
        raise SpinnmanIOException(f"cannot resolve host {host!r}: {error}") from error


class UDPConnection:
    """A UDP socket, optionally connected to one remote ``host:port``.

    Parameters
    ----------
    remote_host, remote_port:
        Where :meth:`send` goes. With a remote host the socket is connected, so only
        datagrams from that address are received. ``remote_port`` defaults to 17893.
    local_host, local_port:
        Address to bind (default: any interface, an ephemeral port).
    chip_x, chip_y:
        The chip at the far end (see :class:`Connection`).
    """

    def __init__(
        self,
        remote_host: str | None = None,
        remote_port: int | None = None,
        local_host: str | None = None,
        local_port: int | None = None,
        chip_x: int = 0,
        chip_y: int = 0,
    ) -> None:
        self.chip_x = chip_x
        self.chip_y = chip_y
        self.remote_ip: str | None = None
        self.remote_port: int | None = None
        self._timeout: float | None = -1.0
        self._closed = False
        try:
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as error:
            raise SpinnmanIOException(f"cannot create a UDP socket: {error}") from error
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_SIZE)
            bind_host = _resolve(local_host) if local_host else ""
            self._socket.bind((bind_host, local_port or 0))
            if remote_host is not None:
                self.remote_ip = _resolve(remote_host)
                self.remote_port = SCP_PORT if remote_port is None else remote_port
                self._socket.connect((self.remote_ip, self.remote_port))
        except OSError as error:
            self._socket.close()
            raise SpinnmanIOException(f"cannot set up UDP socket: {error}") from error
        except SpinnmanIOException:
            self._socket.close()
            raise

    @property
    def local_ip(self) -> str:
        """The local IP address the socket is bound to (as seen by the remote end)."""
        host: str = self._socket.getsockname()[0]
        return host

    @property
    def local_port(self) -> int:
        """The local UDP port."""
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def is_connected(self) -> bool:
        """Whether the socket has a fixed remote address."""
        return self.remote_ip is not None

    def _set_timeout(self, timeout: float | None) -> None:
        if timeout is not None and timeout <= 0.0:
            timeout = 0.0
        if timeout != self._timeout:
            self._socket.settimeout(timeout)
            self._timeout = timeout

    def send(self, data: bytes) -> None:
        """Send ``data`` to the remote address given at construction."""
        if self.remote_ip is None:
            raise SpinnmanIOException("this UDP connection has no remote address to send to")
        try:
            self._socket.send(data)
        except OSError as error:
            raise SpinnmanIOException(f"send to {self.remote_ip} failed: {error}") from error

    def send_to(self, data: bytes, address: tuple[str, int]) -> None:
        """Send ``data`` to ``address`` (host, port)."""
        try:
            self._socket.sendto(data, address)
        except OSError as error:
            raise SpinnmanIOException(f"send to {address} failed: {error}") from error

    def receive(self, timeout: float | None = None) -> bytes:
        """Receive one datagram (see :meth:`Connection.receive`)."""
        if self._closed:
            raise SpinnmanIOException("connection is closed")
        self._set_timeout(timeout)
        try:
            return self._socket.recv(MAX_DATAGRAM)
        except (TimeoutError, BlockingIOError):
            raise SpinnmanTimeoutException("a datagram", timeout) from None
        except OSError as error:
            raise SpinnmanIOException(f"receive failed: {error}") from error

    def receive_with_address(self, timeout: float | None = None) -> tuple[bytes, tuple[str, int]]:
        """Receive one datagram and the (host, port) it came from."""
        if self._closed:
            raise SpinnmanIOException("connection is closed")
        self._set_timeout(timeout)
        try:
            data, address = self._socket.recvfrom(MAX_DATAGRAM)
        except (TimeoutError, BlockingIOError):
            raise SpinnmanTimeoutException("a datagram", timeout) from None
        except OSError as error:
            raise SpinnmanIOException(f"receive failed: {error}") from error
        return data, (str(address[0]), int(address[1]))

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self._closed = True
        self._socket.close()

    def __enter__(self) -> UDPConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"UDPConnection(remote={self.remote_ip}:{self.remote_port}, "
            f"chip=({self.chip_x}, {self.chip_y}))"
        )
