"""UDP channels of the proxy websocket: one asyncio datagram endpoint per channel."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import struct
import threading
from collections.abc import Callable
from typing import cast

from pyspalloc.server.proxy.pacing import BoardPacer, pacer_for, release_pacer
from pyspalloc.wire.consts import SCP_PORT

log = logging.getLogger(__name__)

#: the first two words of every server -> client MSG frame
_MSG_HEADER = struct.Struct("<2I")
_MSG = 2
_U32_MAX = 0xFFFFFFFF
#: the largest UDP payload over IPv4
MAX_DATAGRAM = 65507


class ChannelIds:
    """A thread-safe counter of channel ids: starts at 1, never yields 0, wraps at 2**32."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    def next(self) -> int:
        """Return the next channel id (1..2**32-1)."""
        with self._lock:
            value = next(self._counter)
            if value > _U32_MAX:
                self._counter = itertools.count(2)
                value = 1
            return value


#: the one counter shared by every websocket of the service (web-api.md §6.2)
CHANNEL_IDS = ChannelIds()


class ChannelProtocol(asyncio.DatagramProtocol):
    """Receives datagrams of one channel and hands them on as ready MSG frames.

    Parameters
    ----------
    channel_id:
        The channel's id, put in every frame.
    deliver:
        Called with each complete MSG frame (header + datagram).
    sources:
        For an unbound channel, the source IPs whose datagrams are forwarded; ``None``
        for a connected channel (the kernel already filters by peer address).
    lost:
        Called with the channel id if the socket fails and closes by itself.
    pacer:
        The board's pacer, told of every datagram from the board (SCP channels).
    """

    __slots__ = ("_deliver", "_header", "_id", "_lost", "_pacer", "_sources", "transport")

    def __init__(
        self,
        channel_id: int,
        deliver: Callable[[bytes], None],
        sources: frozenset[str] | None = None,
        lost: Callable[[int], None] | None = None,
        pacer: BoardPacer | None = None,
    ) -> None:
        self._id = channel_id
        self._pacer = pacer
        self._header = _MSG_HEADER.pack(_MSG, channel_id)
        self._deliver = deliver
        self._sources = sources
        self._lost = lost
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        """Forward a datagram (whole, up to 64 KiB) as a MSG frame."""
        sources = self._sources
        if sources is not None and addr[0] not in sources:
            return
        if self._pacer is not None:
            self._pacer.answered()
        self._deliver(self._header + data)

    def error_received(self, exc: Exception) -> None:
        """Ignore ICMP errors (e.g. port unreachable); the channel stays usable."""
        log.debug("proxy channel error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        """Tell the session when the socket failed (not when it was closed on purpose)."""
        if exc is not None and self._lost is not None:
            log.info("proxy channel %d failed: %s", self._id, exc)
            self._lost(self._id)


class Channel:
    """One open channel: its transport, whether it is connected to a board, its pacer."""

    __slots__ = ("bound", "id", "ip", "pacer", "transport")

    def __init__(
        self,
        channel_id: int,
        transport: asyncio.DatagramTransport,
        bound: bool,
        pacer: BoardPacer | None = None,
        ip: str = "",
    ) -> None:
        self.id = channel_id
        self.transport = transport
        self.bound = bound
        self.pacer = pacer
        self.ip = ip

    def send(self, data: bytes) -> None:
        """Send a datagram to the connected board (paced on an SCP channel)."""
        if self.pacer is not None:
            self.pacer.send(self.transport, data)
        else:
            self.transport.sendto(data)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.transport.close()
        pacer, self.pacer = self.pacer, None
        if pacer is not None:
            release_pacer(self.ip, pacer)


async def open_bound(
    channel_id: int,
    ip: str,
    port: int,
    deliver: Callable[[bytes], None],
    lost: Callable[[int], None] | None = None,
) -> Channel:
    """Open a channel connected to ``(ip, port)`` (paced per board if port is SC&MP's).

    Raises
    ------
    OSError
        If the socket cannot be made.
    """
    loop = asyncio.get_running_loop()
    pacer = pacer_for(ip) if port == SCP_PORT else None
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: ChannelProtocol(channel_id, deliver, None, lost, pacer),
            remote_addr=(ip, port),
            family=socket.AF_INET,
        )
    except BaseException:
        if pacer is not None:
            release_pacer(ip, pacer)
        raise
    return Channel(channel_id, transport, bound=True, pacer=pacer, ip=ip)


async def open_unbound(
    channel_id: int,
    host: str,
    sources: frozenset[str],
    deliver: Callable[[bytes], None],
    lost: Callable[[int], None] | None = None,
) -> tuple[Channel, str, int]:
    """Open a listening channel on ``host`` (ephemeral port) that accepts ``sources``.

    Returns
    -------
    tuple
        The channel, and the IPv4 address and port it listens on.

    Raises
    ------
    OSError
        If the socket cannot be made.
    """
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: ChannelProtocol(channel_id, deliver, sources, lost),
        local_addr=(host, 0),
        family=socket.AF_INET,
    )
    address, port = transport.get_extra_info("sockname")[:2]
    return Channel(channel_id, transport, bound=False), str(address), int(port)


def local_address_towards(ip: str, port: int = SCP_PORT) -> str:
    """Return the local IPv4 address the kernel would use to reach ``ip``.

    This is the address a board can send IP-tagged traffic back to (no packet is sent).

    Raises
    ------
    OSError
        If there is no route to ``ip``.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((ip, port))
        return str(probe.getsockname()[0])
