"""The IP tag table of an Ethernet chip (16 entries; 0-7 fixed, 8-15 transient pool)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from pyspalloc.wire.consts import (
    FIRST_TRANSIENT_IPTAG,
    IPTAG_REVERSE,
    IPTAG_STRIP,
    IPTAG_VALID,
    N_IPTAGS,
)

__all__ = [
    "IPTag",
    "TagTable",
]

_ENTRY = struct.Struct("<4s6xHHHIHBBB7x")


@dataclass
class IPTag:
    """One tag entry.

    Attributes
    ----------
    ip, tx_port:
        Where packets sent through the tag go (for a reverse tag: the last sender).
    flags:
        ``IPTAG_*`` bits (:mod:`pyspalloc.wire.consts`).
    timeout:
        Timeout code (0 = never).
    count:
        Packets sent through the tag.
    rx_port:
        UDP port the board listens on (reverse tags).
    dest_x, dest_y, dest_port_cpu:
        Where a reverse tag delivers (chip and ``(sdp_port << 5) | cpu``), or for a
        forward tag the SDP port/cpu byte given when it was set.
    """

    ip: str = "0.0.0.0"
    tx_port: int = 0
    flags: int = 0
    timeout: int = 0
    count: int = 0
    rx_port: int = 0
    dest_x: int = 0
    dest_y: int = 0
    dest_port_cpu: int = 0

    @property
    def valid(self) -> bool:
        """Whether the entry is in use."""
        return bool(self.flags & IPTAG_VALID)

    @property
    def strip(self) -> bool:
        """Whether the SDP header is stripped from outgoing packets."""
        return bool(self.flags & IPTAG_STRIP)

    @property
    def reverse(self) -> bool:
        """Whether this is a reverse (host to core) tag."""
        return bool(self.flags & IPTAG_REVERSE)

    def to_bytes(self) -> bytes:
        """The 32-byte entry as CMD_IPTAG GET returns it."""
        try:
            ip = socket.inet_aton(self.ip)
        except OSError:
            ip = bytes(4)
        return _ENTRY.pack(
            ip,
            self.tx_port & 0xFFFF,
            0,
            self.flags | (self.timeout & 0xF),
            self.count & 0xFFFFFFFF,
            self.rx_port & 0xFFFF,
            self.dest_y,
            self.dest_x,
            self.dest_port_cpu,
        )


class TagTable:
    """Sixteen :class:`IPTag` entries plus the transient timeout code."""

    def __init__(self) -> None:
        self.tags = [IPTag() for _ in range(N_IPTAGS)]
        self.tto = 0

    def free_pool_tag(self) -> int | None:
        """A free transient tag number, or None."""
        for number in range(FIRST_TRANSIENT_IPTAG, N_IPTAGS):
            if not self.tags[number].valid:
                return number
        return None

    def by_rx_port(self, port: int) -> tuple[int, IPTag] | None:
        """The valid reverse tag listening on ``port``."""
        for number, tag in enumerate(self.tags):
            if tag.valid and tag.reverse and tag.rx_port == port:
                return number, tag
        return None

    def entries(self, first: int, count: int) -> bytes:
        """``count`` raw entries from tag ``first``."""
        return b"".join(tag.to_bytes() for tag in self.tags[first : first + count])
