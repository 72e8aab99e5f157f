"""IP tags and reverse IP tags on a board's Ethernet chip (CMD_IPTAG)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pyspalloc.exceptions import SpinnmanInvalidParameterException
from pyspalloc.transceiver.connections import Connection
from pyspalloc.transceiver.engine import (
    DEFAULT_OPTIONS,
    EngineOptions,
    make_request,
    scp_call,
    scp_stream,
)
from pyspalloc.wire.consts import (
    BOOT_PORT,
    IPTAG_REVERSE,
    IPTAG_SET_REVERSE,
    IPTAG_SET_STRIP,
    IPTAG_SET_USE_SENDER,
    IPTAG_STRIP,
    IPTAG_TRANSIENT,
    IPTAG_USE_SENDER,
    IPTAG_VALID,
    N_IPTAGS,
    SCP_PORT,
    IPTagCommand,
)
from pyspalloc.wire.scp import SCPCommand, SCPRequest, SCPResponse

__all__ = [
    "IPTag",
    "ReverseIPTag",
    "clear_ip_tag",
    "get_tags",
    "ip_to_word",
    "set_ip_tag",
    "set_ip_tag_timeout",
    "set_reverse_ip_tag",
    "update_tag_to_connection",
]

#: Ports a reverse IP tag may not use (SCP and boot).
RESERVED_PORTS = frozenset({SCP_PORT, BOOT_PORT})


@dataclass(frozen=True)
class IPTag:
    """A tag sending a core's traffic to ``ip_address:port`` from chip (x, y)'s board."""

    x: int
    y: int
    tag: int
    ip_address: str
    port: int
    strip_sdp: bool = True
    use_sender: bool = False
    count: int = 0


@dataclass(frozen=True)
class ReverseIPTag:
    """A tag delivering UDP ``port`` on (x, y)'s board to core (dest_x, dest_y, dest_p)."""

    x: int
    y: int
    tag: int
    port: int
    dest_x: int
    dest_y: int
    dest_p: int
    sdp_port: int = 1


def ip_to_word(ip: str) -> int:
    """An IPv4 address as the little-endian word of its dotted bytes (arg3 of SET)."""
    return int.from_bytes(socket.inet_aton(ip), "little")


def _check_tag(tag: int) -> None:
    if not 0 <= tag < N_IPTAGS:
        raise SpinnmanInvalidParameterException("tag", tag, f"must be in 0..{N_IPTAGS - 1}")


def _call(
    connection: Connection, x: int, y: int, arg1: int, arg2: int, arg3: int, options: EngineOptions
) -> SCPResponse:
    request = make_request(connection, x, y, 0, SCPCommand.IPTAG, arg1, arg2, arg3)
    return scp_call(connection, request, options)


def set_ip_tag(
    connection: Connection,
    x: int,
    y: int,
    tag: int,
    ip_address: str | None,
    port: int,
    *,
    strip_sdp: bool = True,
    use_sender: bool = False,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Point ``tag`` of (x, y)'s Ethernet chip at ``ip_address:port``.

    ``ip_address`` None (or ``use_sender``) makes the board use the address the request
    came from; with ``use_sender`` the sender's port too.
    """
    _check_tag(tag)
    arg1 = (IPTagCommand.SET << 16) | tag
    if strip_sdp:
        arg1 |= IPTAG_SET_STRIP
    if use_sender:
        arg1 |= IPTAG_SET_USE_SENDER
    ip_word = 0 if ip_address is None or use_sender else ip_to_word(ip_address)
    _call(connection, x, y, arg1, 0 if use_sender else port & 0xFFFF, ip_word, options)


def set_reverse_ip_tag(
    connection: Connection,
    x: int,
    y: int,
    tag: int,
    port: int,
    dest_x: int,
    dest_y: int,
    dest_p: int,
    sdp_port: int = 1,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Deliver UDP datagrams to ``port`` of (x, y)'s board to core (dest_x, dest_y, dest_p)."""
    _check_tag(tag)
    if port in RESERVED_PORTS or not 0 < port < 65536:
        raise SpinnmanInvalidParameterException("port", port, "cannot be used for a reverse tag")
    arg1 = (
        IPTAG_SET_REVERSE
        | IPTAG_SET_STRIP
        | (IPTagCommand.SET << 16)
        | (sdp_port << 13)
        | (dest_p << 8)
        | tag
    )
    arg2 = (dest_x << 24) | (dest_y << 16) | port
    _call(connection, x, y, arg1, arg2, 0, options)


def clear_ip_tag(
    connection: Connection, x: int, y: int, tag: int, options: EngineOptions = DEFAULT_OPTIONS
) -> None:
    """Free ``tag`` on (x, y)'s Ethernet chip."""
    _check_tag(tag)
    _call(connection, x, y, (IPTagCommand.CLEAR << 16) | tag, 0, 0, options)


def set_ip_tag_timeout(
    connection: Connection,
    x: int,
    y: int,
    timeout_code: int,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> int:
    """Set the transient-tag timeout (code t: 2^(t-1) x 10 ms); return the old code.

    A code of 16 or more only reads the current value.
    """
    reply = _call(connection, x, y, IPTagCommand.TTO << 16, timeout_code, 0, options)
    return reply.payload[0] if reply.payload else 0


def update_tag_to_connection(
    connection: Connection, tag: int, options: EngineOptions = DEFAULT_OPTIONS
) -> None:
    """Point ``tag`` of ``connection``'s board at ``connection`` itself (use-sender SET).

    The request goes out through ``connection``, so the board records its address.
    """
    set_ip_tag(
        connection,
        connection.chip_x,
        connection.chip_y,
        tag,
        None,
        0,
        strip_sdp=True,
        use_sender=True,
        options=options,
    )


def _parse_entry(x: int, y: int, tag: int, entry: bytes) -> IPTag | ReverseIPTag | None:
    if len(entry) < 25:
        return None
    (flags,) = struct.unpack_from("<H", entry, 14)
    if not flags & IPTAG_VALID or flags & IPTAG_TRANSIENT:
        return None
    if flags & IPTAG_REVERSE:
        (rx_port,) = struct.unpack_from("<H", entry, 20)
        port_cpu = entry[24]
        return ReverseIPTag(
            x, y, tag, rx_port, entry[23], entry[22], port_cpu & 0x1F, port_cpu >> 5
        )
    (tx_port,) = struct.unpack_from("<H", entry, 10)
    (count,) = struct.unpack_from("<I", entry, 16)
    return IPTag(
        x,
        y,
        tag,
        socket.inet_ntoa(bytes(entry[0:4])),
        tx_port,
        strip_sdp=bool(flags & IPTAG_STRIP),
        use_sender=bool(flags & IPTAG_USE_SENDER),
        count=count,
    )


def get_tags(
    connection: Connection, x: int, y: int, options: EngineOptions = DEFAULT_OPTIONS
) -> list[IPTag | ReverseIPTag]:
    """The tags in use on (x, y)'s Ethernet chip (x, y of each from the reply source)."""
    info = _call(connection, x, y, IPTagCommand.TTO << 16, 255, 0, options)
    pool, fixed = (info.payload[2], info.payload[3]) if len(info.payload) >= 4 else (8, 8)
    count = pool + fixed
    entries: dict[int, tuple[int, int, bytes]] = {}

    def requests() -> Iterator[SCPRequest]:
        for tag in range(count):
            yield make_request(
                connection, x, y, 0, SCPCommand.IPTAG, (IPTagCommand.GET << 16) | tag, 1, 0
            )

    def keep(index: int, reply: SCPResponse) -> None:
        entries[index] = (reply.header.src_x, reply.header.src_y, reply.payload)

    scp_stream(
        connection,
        requests(),
        keep,
        options,
    )
    tags: list[IPTag | ReverseIPTag] = []
    for tag in range(count):
        src_x, src_y, entry = entries[tag]
        parsed = _parse_entry(src_x, src_y, tag, entry)
        if parsed is not None:
            tags.append(parsed)
    return tags
