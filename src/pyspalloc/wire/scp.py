"""SCP: SpiNNaker Command Protocol requests and responses inside SDP.

A request is ``pad(2) + SDP header(8) + cmd(2) + seq(2) + arg1..arg3(12) + data``;
a response is ``pad(2) + SDP header(8) + rc(2) + seq(2) + payload``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from pyspalloc.wire.errors import WireFormatError, check_range, unpack_from
from pyspalloc.wire.sdp import SDPFlag, SDPHeader, SDPMessage

#: The most data bytes one SCP request or READ reply carries.
MAX_SCP_DATA = 256
#: Smallest request (pad + SDP + cmd/seq + three args) and response sizes.
MIN_REQUEST_SIZE = 26
MIN_RESPONSE_SIZE = 14
#: UDP port of SC&MP on a board (and of a BMP).
SCP_PORT = 17893


class SCPCommand(IntEnum):
    """SCP command codes."""

    VER = 0
    RUN = 1
    READ = 2
    WRITE = 3
    APLX = 4
    FILL = 5
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


@dataclass(frozen=True)
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
        check_range("command", self.command, 0, 0xFFFF)
        check_range("sequence", self.sequence, 0, 0xFFFF)
        for name in ("arg1", "arg2", "arg3"):
            check_range(name, getattr(self, name), 0, 0xFFFFFFFF)
        if len(self.data) > MAX_SCP_DATA:
            raise WireFormatError(f"SCP data is {len(self.data)} bytes; at most {MAX_SCP_DATA}")
        body = struct.pack(
            "<2H3I", self.command, self.sequence, self.arg1, self.arg2, self.arg3
        ) + bytes(self.data)
        return SDPMessage(self.header, body).to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SCPRequest:
        """Decode a padded UDP payload holding an SCP request.

        Args missing from a short request read as 0; fewer than 14 bytes (pad, SDP
        header, command and sequence) is an error.
        """
        message = SDPMessage.from_bytes(data)
        body = message.data
        command, sequence = unpack_from("<2H", body, 0, "SCP request")
        args = [0, 0, 0]
        for index in range(3):
            start = 4 + 4 * index
            if len(body) >= start + 4:
                (args[index],) = struct.unpack_from("<I", body, start)
        payload = bytes(body[16:]) if len(body) > 16 else b""
        if len(payload) > MAX_SCP_DATA:
            raise WireFormatError(f"SCP data is {len(payload)} bytes; at most {MAX_SCP_DATA}")
        return cls(message.header, command, sequence, args[0], args[1], args[2], payload)


@dataclass(frozen=True)
class SCPResponse:
    """An SCP response: SDP header, result code, sequence number, payload."""

    header: SDPHeader
    result: SCPResult
    sequence: int
    payload: bytes = b""

    def to_bytes(self) -> bytes:
        """Encode as a padded UDP payload."""
        check_range("sequence", self.sequence, 0, 0xFFFF)
        body = struct.pack("<2H", self.result, self.sequence) + bytes(self.payload)
        return SDPMessage(self.header, body).to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SCPResponse:
        """Decode a padded UDP payload holding an SCP response."""
        message = SDPMessage.from_bytes(data)
        code, sequence = unpack_from("<2H", message.data, 0, "SCP response")
        try:
            result = SCPResult(code)
        except ValueError:
            raise WireFormatError(f"unknown SCP result code 0x{code:x}") from None
        return cls(message.header, result, sequence, bytes(message.data[4:]))

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
