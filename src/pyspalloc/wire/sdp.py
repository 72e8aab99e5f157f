"""SDP: the SpiNNaker Datagram Protocol header, as carried in UDP.

On UDP port 17893 every SDP packet is preceded by two pad bytes. Raw datagrams to a
reverse IP tag port carry no pad and no header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from enum import IntEnum

from pyspalloc.wire.errors import WireFormatError, check_range, unpack_from

#: Bytes of the SDP header.
SDP_HEADER_SIZE = 8
#: The two bytes before the SDP header in a UDP datagram.
UDP_PAD = b"\x00\x00"
#: The most SDP data a board accepts (SCP header 16 + 256 data bytes).
MAX_SDP_DATA = 272
#: SDP port/cpu of "the host over Ethernet" (port 7, cpu 31).
PORT_ETHERNET = 7
CPU_ETHERNET = 31
#: The "transient, reply to the sender" IP tag.
TAG_NONE = 0xFF


_HEADER = struct.Struct("<8B")


def pack_header(header: SDPHeader, prefix: str = "", *extra: int) -> bytes:
    """Pack ``header`` (and ``extra`` values in ``prefix`` format after it) in one call.

    Raises
    ------
    WireFormatError
        If a field does not fit its bits.
    """
    if not (
        0 <= header.dest_port <= 7
        and 0 <= header.src_port <= 7
        and 0 <= header.dest_cpu <= 31
        and 0 <= header.src_cpu <= 31
    ):
        for name, top in (("dest_port", 7), ("src_port", 7), ("dest_cpu", 31), ("src_cpu", 31)):
            check_range(name, getattr(header, name), 0, top)
    try:
        return struct.pack(
            "<8B" + prefix,
            header.flags,
            header.tag,
            (header.dest_port << 5) | header.dest_cpu,
            (header.src_port << 5) | header.src_cpu,
            header.dest_y,
            header.dest_x,
            header.src_y,
            header.src_x,
            *extra,
        )
    except (struct.error, TypeError) as error:
        raise WireFormatError(f"SDP/SCP field out of range: {error}") from None


class SDPFlag(IntEnum):
    """The values of the SDP flags byte that spinnman accepts."""

    REPLY_NOT_EXPECTED = 0x07
    REPLY_EXPECTED = 0x87
    REPLY_NOT_EXPECTED_NO_P2P = 0x27
    REPLY_EXPECTED_NO_P2P = 0xA7

    @property
    def expects_reply(self) -> bool:
        """Whether the sender wants an answer."""
        return bool(self & 0x80)


@dataclass(frozen=True, slots=True)
class SDPHeader:
    """The 8-byte SDP header.

    ``flags`` is kept as an int so that odd values seen on the wire can be decoded and
    answered; :attr:`flag` gives the :class:`SDPFlag` when it is one of the known ones.
    """

    flags: int = SDPFlag.REPLY_EXPECTED
    tag: int = TAG_NONE
    dest_port: int = 0
    dest_cpu: int = 0
    src_port: int = PORT_ETHERNET
    src_cpu: int = CPU_ETHERNET
    dest_x: int = 0
    dest_y: int = 0
    src_x: int = 0
    src_y: int = 0

    def to_bytes(self) -> bytes:
        """Encode the 8 header bytes."""
        return pack_header(self)

    @classmethod
    def from_bytes(cls, data: bytes, offset: int = 0) -> SDPHeader:
        """Decode the 8 header bytes at ``offset``."""
        if len(data) < offset + SDP_HEADER_SIZE:
            unpack_from("<8B", data, offset, "SDP header")  # raises the length error
        flags, tag, dest, src, dy, dx, sy, sx = _HEADER.unpack_from(data, offset)
        return cls(flags, tag, dest >> 5, dest & 0x1F, src >> 5, src & 0x1F, dx, dy, sx, sy)

    @property
    def flag(self) -> SDPFlag | None:
        """The flags as an :class:`SDPFlag`, or None for a value spinnman rejects."""
        try:
            return SDPFlag(self.flags)
        except ValueError:
            return None

    @property
    def expects_reply(self) -> bool:
        """Whether the sender asked for a reply (bit 7 of the flags)."""
        return bool(self.flags & 0x80)

    def reply_header(self, src_x: int, src_y: int) -> SDPHeader:
        """The header a board puts on its answer to this request.

        Parameters
        ----------
        src_x, src_y:
            The chip that handled the request (never 255, 255).
        """
        return replace(
            self,
            flags=self.flags & 0x7F,
            dest_port=self.src_port,
            dest_cpu=self.src_cpu,
            src_port=self.dest_port,
            src_cpu=self.dest_cpu,
            dest_x=self.src_x,
            dest_y=self.src_y,
            src_x=src_x,
            src_y=src_y,
        )


@dataclass(frozen=True, slots=True)
class SDPMessage:
    """An SDP header and its data."""

    header: SDPHeader
    data: bytes = b""

    def to_bytes(self, pad: bool = True) -> bytes:
        """Encode, with the two UDP pad bytes in front unless ``pad`` is False."""
        if len(self.data) > MAX_SDP_DATA:
            raise WireFormatError(
                f"SDP data is {len(self.data)} bytes; at most {MAX_SDP_DATA} fit in a packet"
            )
        return (UDP_PAD if pad else b"") + self.header.to_bytes() + bytes(self.data)

    @classmethod
    def from_bytes(cls, data: bytes, pad: bool = True) -> SDPMessage:
        """Decode a datagram, skipping the two pad bytes unless ``pad`` is False."""
        offset = 2 if pad else 0
        header = SDPHeader.from_bytes(data, offset)
        body = bytes(data[offset + SDP_HEADER_SIZE :])
        if len(body) > MAX_SDP_DATA:
            raise WireFormatError(f"SDP data is {len(body)} bytes; at most {MAX_SDP_DATA}")
        return cls(header, body)
