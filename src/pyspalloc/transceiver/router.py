"""Multicast router: diagnostics, diagnostic filters and routing tables."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pyspalloc.exceptions import SpinnmanInvalidParameterException
from pyspalloc.transceiver.connections import Connection
from pyspalloc.transceiver.engine import (
    DEFAULT_OPTIONS,
    EngineOptions,
    make_request,
    scp_burst,
    scp_call,
)
from pyspalloc.transceiver.memory import read_memory, write_memory
from pyspalloc.wire.consts import SV_BASE, SV_RTR_COPY
from pyspalloc.wire.scp import SCPCommand

__all__ = [
    "MulticastRoute",
    "RouterDiagnostics",
    "clear_multicast_routes",
    "clear_router_diagnostic_counters",
    "get_multicast_routes",
    "get_router_diagnostics",
    "load_multicast_routes",
    "set_router_diagnostic_filter",
]

ROUTER_BASE = 0xE1000000
#: r11: write 1s to bits 16-31 to reset counters, bits 0-15 to enable them.
DIAGNOSTIC_CONTROL = 0xF100002C
ERROR_STATUS = ROUTER_BASE + 0x14
FILTER_BASE = ROUTER_BASE + 0x200
COUNTER_BASE = ROUTER_BASE + 0x300
N_COUNTERS = 16
#: Where routing tables are staged before CMD_RTR loads them.
TABLE_STAGING = 0x67800000
N_ROUTER_ENTRIES = 1024
_RTR_CLEAR, _RTR_LOAD = 0, 2
_ALLOC_RTR = 3

_COUNTER_NAMES = (
    "local_multicast",
    "external_multicast",
    "local_peer_to_peer",
    "external_peer_to_peer",
    "local_nearest_neighbour",
    "external_nearest_neighbour",
    "local_fixed_route",
    "external_fixed_route",
    "dropped_multicast",
    "dropped_peer_to_peer",
    "dropped_nearest_neighbour",
    "dropped_fixed_route",
)


@dataclass(frozen=True)
class RouterDiagnostics:
    """Router control, error status and the 16 diagnostic counters."""

    control: int
    error_status: int
    counters: tuple[int, ...]

    @property
    def mon(self) -> int:
        """The monitor processor of the router."""
        return (self.control >> 8) & 0x1F

    @property
    def wait_1(self) -> int:
        """Wait time before emergency routing."""
        return (self.control >> 16) & 0xFF

    @property
    def wait_2(self) -> int:
        """Wait time before dropping."""
        return (self.control >> 24) & 0xFF

    @property
    def error_count(self) -> int:
        """Number of router errors."""
        return self.error_status & 0xFF

    def counter(self, name: str) -> int:
        """A counter by name (``"local_multicast"``, ..., ``"dropped_fixed_route"``)."""
        return self.counters[_COUNTER_NAMES.index(name)]

    @property
    def user_counters(self) -> tuple[int, ...]:
        """Counters 12-15 (user-defined filters)."""
        return self.counters[12:16]


@dataclass(frozen=True)
class MulticastRoute:
    """One multicast routing entry: bits 0-5 of ``route`` are links, bit 6 + p core p."""

    key: int
    mask: int
    route: int
    app_id: int = 0


def clear_router_diagnostic_counters(
    connection: Connection, x: int, y: int, options: EngineOptions = DEFAULT_OPTIONS
) -> None:
    """Reset and enable all 16 counters of chip (x, y)."""
    write_memory(connection, x, y, DIAGNOSTIC_CONTROL, 0xFFFFFFFF, options=options)


def get_router_diagnostics(
    connection: Connection, x: int, y: int, options: EngineOptions = DEFAULT_OPTIONS
) -> RouterDiagnostics:
    """Read chip (x, y)'s router control, error status and diagnostic counters."""
    replies = scp_burst(
        connection,
        [
            make_request(connection, x, y, 0, SCPCommand.READ, ROUTER_BASE, 4, 2),
            make_request(connection, x, y, 0, SCPCommand.READ, ERROR_STATUS, 4, 2),
            make_request(connection, x, y, 0, SCPCommand.READ, COUNTER_BASE, 4 * N_COUNTERS, 2),
        ],
        options,
    )
    (control,) = struct.unpack("<I", replies[0].payload[:4])
    (error,) = struct.unpack("<I", replies[1].payload[:4])
    counters = struct.unpack(f"<{N_COUNTERS}I", replies[2].payload[: 4 * N_COUNTERS])
    return RouterDiagnostics(control, error, tuple(counters))


def set_router_diagnostic_filter(
    connection: Connection,
    x: int,
    y: int,
    position: int,
    filter_word: int,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Set diagnostic filter ``position`` (0-15) of chip (x, y) to ``filter_word``."""
    if not 0 <= position < N_COUNTERS:
        raise SpinnmanInvalidParameterException("position", position, "must be in 0..15")
    write_memory(connection, x, y, FILTER_BASE + 4 * position, filter_word, options=options)


def clear_multicast_routes(
    connection: Connection, x: int, y: int, options: EngineOptions = DEFAULT_OPTIONS
) -> None:
    """Empty chip (x, y)'s multicast routing table."""
    request = make_request(connection, x, y, 0, SCPCommand.RTR, _RTR_CLEAR)
    scp_call(connection, request, options)


def load_multicast_routes(
    connection: Connection,
    x: int,
    y: int,
    routes: list[MulticastRoute],
    app_id: int = 0,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Add ``routes`` to chip (x, y)'s table: stage them in SDRAM, allocate, load."""
    if not routes:
        return
    table = bytearray()
    for index, route in enumerate(routes):
        table += struct.pack("<2H3I", index, 0, route.route, route.key, route.mask)
    table += b"\xff" * 16
    write_memory(connection, x, y, TABLE_STAGING, table, options=options)
    alloc = make_request(
        connection, x, y, 0, SCPCommand.ALLOC, (app_id << 8) | _ALLOC_RTR, len(routes)
    )
    reply = scp_call(
        connection,
        alloc,
        options.once(),
    )
    (base,) = reply.args(1)
    if base == 0:
        raise SpinnmanInvalidParameterException(
            "routes", len(routes), f"no room for {len(routes)} router entries on {x},{y}"
        )
    load = make_request(
        connection,
        x,
        y,
        0,
        SCPCommand.RTR,
        (len(routes) << 16) | (app_id << 8) | _RTR_LOAD,
        TABLE_STAGING,
        base,
    )
    scp_call(connection, load, options)


def get_multicast_routes(
    connection: Connection,
    x: int,
    y: int,
    app_id: int | None = None,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> list[MulticastRoute]:
    """The routes in use on chip (x, y) (only ``app_id``'s, if given)."""
    (base,) = struct.unpack(
        "<I", read_memory(connection, x, y, SV_BASE + SV_RTR_COPY, 4, options=options)
    )
    table = read_memory(connection, x, y, base, 16 * N_ROUTER_ENTRIES, options=options)
    routes: list[MulticastRoute] = []
    for offset in range(0, len(table), 16):
        _, free, route, key, mask = struct.unpack_from("<2H3I", table, offset)
        entry_app = free & 0xFF
        if route >= 0xFF000000 or (app_id is not None and entry_app != app_id):
            continue
        routes.append(MulticastRoute(key, mask, route, entry_app))
    return routes
