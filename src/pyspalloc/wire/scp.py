"""SCP: SpiNNaker Command Protocol requests and responses inside SDP.

A request is ``pad(2) + SDP header(8) + cmd(2) + seq(2) + arg1..arg3(12) + data``;
a response is ``pad(2) + SDP header(8) + rc(2) + seq(2) + payload``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from pyspalloc.wire.errors import WireFormatError, unpack_from
from pyspalloc.wire.sdp import (
    MAX_SDP_DATA,
    UDP_PAD,
    SDPFlag,
    SDPHeader,
    SDPMessage,
    pack_header,
)

#: The most data bytes one SCP request or READ reply carries.
MAX_SCP_DATA = 256
#: Smallest request (pad + SDP + cmd/seq + three args) and response sizes.
MIN_REQUEST_SIZE = 26
MIN_RESPONSE_SIZE = 14


class SCPCommand(IntEnum):
    """SCP command codes."""

    VER = 0
    RUN = 1
    READ = 2
    WRITE = 3
    APLX = 4
    FILL = 5
    COUNT = 15
    REMAP = 16
    LINK_READ = 17
    LINK_WRITE = 18
    AR = 19
    NNP = 20
    APP_COPY_RUN = 21
    SIG = 22
    FFD = 23
    AS = 24
    LED = 25
    IPTAG = 26
    SROM = 27
    ALLOC = 28
    RTR = 29
    DPRI = 30
    INFO = 31
    SYNC = 32
    BMP_INFO = 48
    BMP_POWER = 57


class SCPResult(IntEnum):
    """SCP result codes (always 0x80..0x8F on the wire)."""

    RC_OK = 0x80
    RC_LEN = 0x81
    RC_SUM = 0x82
    RC_CMD = 0x83
    RC_ARG = 0x84
    RC_PORT = 0x85
    RC_TIMEOUT = 0x86
    RC_ROUTE = 0x87
    RC_CPU = 0x88
    RC_DEAD = 0x89
    RC_BUF = 0x8A
    RC_P2P_NOREPLY = 0x8B
    RC_P2P_REJECT = 0x8C
    RC_P2P_BUSY = 0x8D
    RC_P2P_TIMEOUT = 0x8E
    RC_PKT_TX = 0x8F


_RESULTS = {int(result): result for result in SCPResult}
_RESPONSE_HEAD = struct.Struct("<2x8B2H")
_REQUEST_HEAD = struct.Struct("<2x8B2H3I")

#: Result codes after which a client resends the same request.
RETRY_RESULTS = frozenset(
    {
        SCPResult.RC_LEN,
        SCPResult.RC_TIMEOUT,
        SCPResult.RC_P2P_NOREPLY,
        SCPResult.RC_P2P_BUSY,
        SCPResult.RC_P2P_TIMEOUT,
    }
)


@dataclass(frozen=True, slots=True)
class SCPRequest:
    """An SCP request: SDP header, command, sequence number, three args, data.

    ``command`` is kept as an int so a board can answer unknown commands with RC_CMD.
    """

    header: SDPHeader
    command: int
    sequence: int = 0
    arg1: int = 0
    arg2: int = 0
    arg3: int = 0
    data: bytes = b""

    def to_bytes(self) -> bytes:
        """Encode as a padded UDP payload (always all three args)."""
        if len(self.data) > MAX_SCP_DATA:
            raise WireFormatError(f"SCP data is {len(self.data)} bytes; at most {MAX_SCP_DATA}")
        head = pack_header(
            self.header, "2H3I", self.command, self.sequence, self.arg1, self.arg2, self.arg3
        )
        return UDP_PAD + head + bytes(self.data)

    @classmethod
    def from_bytes(cls, data: bytes) -> SCPRequest:
        """Decode a padded UDP payload holding an SCP request.

        Args missing from a short request read as 0; fewer than 14 bytes (pad, SDP
        header, command and sequence) is an error.
        """
        if len(data) >= MIN_REQUEST_SIZE:
            if len(data) - MIN_REQUEST_SIZE > MAX_SCP_DATA:
                raise WireFormatError(
                    f"SCP data is {len(data) - MIN_REQUEST_SIZE} bytes; at most {MAX_SCP_DATA}"
                )
            flags, tag, dest, src, dy, dx, sy, sx, command, sequence, arg1, arg2, arg3 = (
                _REQUEST_HEAD.unpack_from(data)
            )
            header = SDPHeader(
                flags, tag, dest >> 5, dest & 0x1F, src >> 5, src & 0x1F, dx, dy, sx, sy
            )
            payload = bytes(data[MIN_REQUEST_SIZE:])
            return cls(header, command, sequence, arg1, arg2, arg3, payload)
        message = SDPMessage.from_bytes(data)
        body = message.data
        command, sequence = unpack_from("<2H", body, 0, "SCP request")
        args = [0, 0, 0]
        for index in range(3):
            start = 4 + 4 * index
            if len(body) >= start + 4:
                (args[index],) = struct.unpack_from("<I", body, start)
        return cls(message.header, command, sequence, args[0], args[1], args[2], b"")


@dataclass(frozen=True, slots=True)
class SCPResponse:
    """An SCP response: SDP header, result code, sequence number, payload."""

    header: SDPHeader
    result: SCPResult
    sequence: int
    payload: bytes = b""

    def to_bytes(self) -> bytes:
        """Encode as a padded UDP payload."""
        head = pack_header(self.header, "2H", self.result, self.sequence)
        return UDP_PAD + head + bytes(self.payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> SCPResponse:
        """Decode a padded UDP payload holding an SCP response."""
        if len(data) < MIN_RESPONSE_SIZE:
            raise WireFormatError(
                f"SCP response too short: {len(data)} bytes, need at least {MIN_RESPONSE_SIZE}"
            )
        if len(data) - MIN_RESPONSE_SIZE + 4 > MAX_SDP_DATA:
            raise WireFormatError(f"SDP data is {len(data) - 10} bytes; at most {MAX_SDP_DATA}")
        flags, tag, dest, src, dy, dx, sy, sx, code, sequence = _RESPONSE_HEAD.unpack_from(data)
        result = _RESULTS.get(code)
        if result is None:
            raise WireFormatError(f"unknown SCP result code 0x{code:x}")
        header = SDPHeader(flags, tag, dest >> 5, dest & 0x1F, src >> 5, src & 0x1F, dx, dy, sx, sy)
        return cls(header, result, sequence, bytes(data[MIN_RESPONSE_SIZE:]))

    def args(self, count: int) -> tuple[int, ...]:
        """The first ``count`` little-endian u32 args of the payload."""
        return unpack_from(f"<{count}I", self.payload, 0, "SCP response args")


def scp_request(
    x: int,
    y: int,
    p: int,
    command: int,
    arg1: int = 0,
    arg2: int = 0,
    arg3: int = 0,
    data: bytes = b"",
    *,
    sequence: int = 0,
    flags: int = SDPFlag.REPLY_EXPECTED,
    src_x: int = 0,
    src_y: int = 0,
) -> SCPRequest:
    """Build a request the way a host sends it: tag 0xFF, SDP port 0, from port 7 cpu 31.

    Parameters
    ----------
    x, y, p:
        Destination chip and core.
    command:
        The :class:`SCPCommand`.
    arg1, arg2, arg3:
        The arguments.
    data:
        Up to 256 data bytes.
    sequence:
        The sequence number (the engine normally sets it).
    flags:
        The SDP flags.
    src_x, src_y:
        The chip of the connection the request is sent through.
    """
    header = SDPHeader(flags=flags, dest_cpu=p, dest_x=x, dest_y=y, src_x=src_x, src_y=src_y)
    return SCPRequest(header, command, sequence, arg1, arg2, arg3, data)


def reply_to(
    request: SCPRequest, result: SCPResult, payload: bytes, src_x: int, src_y: int
) -> SCPResponse:
    """The board's response to ``request``, sent from chip (src_x, src_y)."""
    return SCPResponse(request.header.reply_header(src_x, src_y), result, request.sequence, payload)


def with_sequence(request: SCPRequest, sequence: int) -> SCPRequest:
    """A copy of ``request`` carrying ``sequence``."""
    return SCPRequest(
        request.header,
        request.command,
        sequence,
        request.arg1,
        request.arg2,
        request.arg3,
        request.data,
    )
