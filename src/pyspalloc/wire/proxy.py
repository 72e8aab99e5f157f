"""Frames of the Spalloc proxy websocket protocol.

Every frame is a sequence of little-endian u32 words, optionally followed by a
payload. Word 0 is the :class:`ProxyProtocol` opcode; word 1 is a correlation id
(OPEN, CLOSE, OPEN_UNBOUND, ERROR) or a channel id (MSG, MSG_TO).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from pyspalloc.wire.errors import WireFormatError, check_range, unpack_from

U32_MAX = 0xFFFFFFFF
#: ERROR texts longer than this many UTF-8 bytes are not allowed.
MAX_ERROR_BYTES = 1000


class ProxyProtocol(IntEnum):
    """Websocket binary frame type identifiers in the Spalloc proxy protocol."""

    #: Message relating to opening a channel
    OPEN = 0
    #: Message relating to closing a channel
    CLOSE = 1
    #: Message sent on a channel
    MSG = 2
    #: Message relating to opening an unbound listen-only channel
    OPEN_UNBOUND = 3
    #: Message sent on an unbound channel to a given board
    MSG_TO = 4
    #: Message relating to an error when opening or closing a channel
    ERROR = 5


def _words(*values: int) -> bytes:
    for value in values:
        check_range("proxy frame field", value, 0, U32_MAX)
    return struct.pack(f"<{len(values)}I", *values)


def _exact(data: bytes, size: int, what: str) -> None:
    if len(data) != size:
        raise WireFormatError(f"{what} frame must be exactly {size} bytes, not {len(data)}")


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise WireFormatError(f"bad port number {port}: must be 1..65535")


@dataclass(frozen=True)
class OpenRequest:
    """Client asks for a channel to UDP ``port`` of the board whose Ethernet chip is x, y."""

    correlation_id: int
    x: int
    y: int
    port: int

    def to_bytes(self) -> bytes:
        """Encode as a 20-byte frame."""
        _check_port(self.port)
        return _words(ProxyProtocol.OPEN, self.correlation_id, self.x, self.y, self.port)

    @classmethod
    def from_bytes(cls, data: bytes) -> OpenRequest:
        """Decode a 20-byte OPEN request."""
        _exact(data, 20, "OPEN request")
        _, corr, x, y, port = unpack_from("<5I", data, 0, "OPEN request")
        return cls(corr, x, y, port)


@dataclass(frozen=True)
class OpenReply:
    """Server's answer to an OPEN: the new channel id."""

    correlation_id: int
    channel_id: int

    def to_bytes(self) -> bytes:
        """Encode as a 12-byte frame."""
        return _words(ProxyProtocol.OPEN, self.correlation_id, self.channel_id)

    @classmethod
    def from_bytes(cls, data: bytes) -> OpenReply:
        """Decode a 12-byte OPEN reply."""
        _exact(data, 12, "OPEN reply")
        _, corr, channel = unpack_from("<3I", data, 0, "OPEN reply")
        return cls(corr, channel)


@dataclass(frozen=True)
class CloseRequest:
    """Client asks to close a channel."""

    correlation_id: int
    channel_id: int

    def to_bytes(self) -> bytes:
        """Encode as a 12-byte frame."""
        return _words(ProxyProtocol.CLOSE, self.correlation_id, self.channel_id)

    @classmethod
    def from_bytes(cls, data: bytes) -> CloseRequest:
        """Decode a 12-byte CLOSE request."""
        _exact(data, 12, "CLOSE request")
        _, corr, channel = unpack_from("<3I", data, 0, "CLOSE request")
        return cls(corr, channel)


@dataclass(frozen=True)
class CloseReply:
    """Server's answer to a CLOSE: the closed channel id, or 0 if it was not open."""

    correlation_id: int
    channel_id: int

    def to_bytes(self) -> bytes:
        """Encode as a 12-byte frame."""
        return _words(ProxyProtocol.CLOSE, self.correlation_id, self.channel_id)

    @classmethod
    def from_bytes(cls, data: bytes) -> CloseReply:
        """Decode a 12-byte CLOSE reply."""
        _exact(data, 12, "CLOSE reply")
        _, corr, channel = unpack_from("<3I", data, 0, "CLOSE reply")
        return cls(corr, channel)


@dataclass(frozen=True)
class Message:
    """A UDP payload on a channel, in either direction."""

    channel_id: int
    payload: bytes

    def to_bytes(self) -> bytes:
        """Encode as 8 header bytes plus the payload."""
        return _words(ProxyProtocol.MSG, self.channel_id) + bytes(self.payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> Message:
        """Decode a MSG frame (at least 8 bytes)."""
        _, channel = unpack_from("<2I", data, 0, "MSG")
        return cls(channel, bytes(data[8:]))


@dataclass(frozen=True)
class OpenUnboundRequest:
    """Client asks for an unbound (listen-only) channel."""

    correlation_id: int

    def to_bytes(self) -> bytes:
        """Encode as an 8-byte frame."""
        return _words(ProxyProtocol.OPEN_UNBOUND, self.correlation_id)

    @classmethod
    def from_bytes(cls, data: bytes) -> OpenUnboundRequest:
        """Decode an 8-byte OPEN_UNBOUND request."""
        _exact(data, 8, "OPEN_UNBOUND request")
        _, corr = unpack_from("<2I", data, 0, "OPEN_UNBOUND request")
        return cls(corr)


@dataclass(frozen=True)
class OpenUnboundReply:
    """Server's answer to OPEN_UNBOUND: channel id and the server-side IPv4 and port."""

    correlation_id: int
    channel_id: int
    ip: str
    port: int

    def to_bytes(self) -> bytes:
        """Encode as a 20-byte frame (the address in network byte order)."""
        try:
            octets = bytes(int(part) for part in self.ip.split("."))
        except ValueError as error:
            raise WireFormatError(f"bad IPv4 address {self.ip!r}") from error
        if len(octets) != 4:
            raise WireFormatError(f"bad IPv4 address {self.ip!r}")
        return (
            _words(ProxyProtocol.OPEN_UNBOUND, self.correlation_id, self.channel_id)
            + octets
            + _words(self.port)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> OpenUnboundReply:
        """Decode a 20-byte OPEN_UNBOUND reply."""
        _exact(data, 20, "OPEN_UNBOUND reply")
        _, corr, channel = unpack_from("<3I", data, 0, "OPEN_UNBOUND reply")
        ip = ".".join(str(octet) for octet in data[12:16])
        (port,) = unpack_from("<I", data, 16, "OPEN_UNBOUND reply")
        return cls(corr, channel, ip, port)


@dataclass(frozen=True)
class MessageTo:
    """A payload to send from an unbound channel to a port of a board of the job."""

    channel_id: int
    x: int
    y: int
    port: int
    payload: bytes

    def to_bytes(self) -> bytes:
        """Encode as 20 header bytes plus the payload."""
        _check_port(self.port)
        header = _words(ProxyProtocol.MSG_TO, self.channel_id, self.x, self.y, self.port)
        return header + bytes(self.payload)

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageTo:
        """Decode a MSG_TO frame (at least 20 bytes)."""
        _, channel, x, y, port = unpack_from("<5I", data, 0, "MSG_TO")
        return cls(channel, x, y, port, bytes(data[20:]))


@dataclass(frozen=True)
class ErrorReply:
    """Server's failure answer to an OPEN, CLOSE or OPEN_UNBOUND."""

    correlation_id: int
    message: str

    def to_bytes(self) -> bytes:
        """Encode; a message over 1000 UTF-8 bytes is cut at a character boundary."""
        text = self.message.encode("utf-8")
        if len(text) > MAX_ERROR_BYTES:
            text = text[:MAX_ERROR_BYTES].decode("utf-8", "ignore").encode("utf-8")
        return _words(ProxyProtocol.ERROR, self.correlation_id) + text

    @classmethod
    def from_bytes(cls, data: bytes) -> ErrorReply:
        """Decode an ERROR frame; undecodable bytes are replaced, not rejected."""
        _, corr = unpack_from("<2I", data, 0, "ERROR")
        return cls(corr, bytes(data[8:]).decode("utf-8", "replace"))


ClientFrame = OpenRequest | CloseRequest | Message | OpenUnboundRequest | MessageTo
ServerFrame = OpenReply | CloseReply | Message | OpenUnboundReply | ErrorReply

_CLIENT_DECODERS: dict[ProxyProtocol, Callable[[bytes], ClientFrame]] = {
    ProxyProtocol.OPEN: OpenRequest.from_bytes,
    ProxyProtocol.CLOSE: CloseRequest.from_bytes,
    ProxyProtocol.MSG: Message.from_bytes,
    ProxyProtocol.OPEN_UNBOUND: OpenUnboundRequest.from_bytes,
    ProxyProtocol.MSG_TO: MessageTo.from_bytes,
}
_SERVER_DECODERS: dict[ProxyProtocol, Callable[[bytes], ServerFrame]] = {
    ProxyProtocol.OPEN: OpenReply.from_bytes,
    ProxyProtocol.CLOSE: CloseReply.from_bytes,
    ProxyProtocol.MSG: Message.from_bytes,
    ProxyProtocol.OPEN_UNBOUND: OpenUnboundReply.from_bytes,
    ProxyProtocol.ERROR: ErrorReply.from_bytes,
}


def frame_opcode(data: bytes) -> ProxyProtocol:
    """Return the opcode of a frame, or raise WireFormatError if it is unknown."""
    (code,) = unpack_from("<I", data, 0, "proxy frame")
    try:
        return ProxyProtocol(code)
    except ValueError:
        raise WireFormatError(f"unknown proxy opcode {code}") from None


def decode_client_frame(data: bytes) -> ClientFrame:
    """Decode a frame sent by a client to the service."""
    opcode = frame_opcode(data)
    decoder = _CLIENT_DECODERS.get(opcode)
    if decoder is None:
        raise WireFormatError(f"{opcode.name} frames are not sent by clients")
    return decoder(data)


def decode_server_frame(data: bytes) -> ServerFrame:
    """Decode a frame sent by the service to a client."""
    opcode = frame_opcode(data)
    decoder = _SERVER_DECODERS.get(opcode)
    if decoder is None:
        raise WireFormatError(f"{opcode.name} frames are not sent by the service")
    return decoder(data)
