"""Finding out what a machine is: version, dimensions, P2P table, chip summaries."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pyspalloc.exceptions import SpinnmanException, SpinnmanIOException
from pyspalloc.transceiver.connections import Connection
from pyspalloc.transceiver.engine import (
    DEFAULT_OPTIONS,
    EngineOptions,
    make_request,
    scp_call,
    scp_stream,
)
from pyspalloc.transceiver.machine_info import (
    CPU_STATE_IDLE,
    P2P_NONE,
    ChipInfo,
    ChipSummary,
    MachineInfo,
    VersionInfo,
    decode_p2p_column,
    parse_chip_summary,
    parse_version,
)
from pyspalloc.transceiver.memory import read_memory
from pyspalloc.wire.consts import SV_BASE, SV_P2P_DIMS, SV_P2V_MAP
from pyspalloc.wire.scp import SCPCommand, SCPRequest, SCPResponse

__all__ = [
    "P2P_TABLE_BASE",
    "get_chip_summary",
    "get_machine_details",
    "get_version",
    "read_dimensions",
]

#: Router P2P table: 8 entries of 3 bits per word, entry (x << 8) | y.
P2P_TABLE_BASE = 0xE1010000
#: CMD_INFO arg1 as spinnman sends it.
INFO_ARG = 0x5F


def get_version(
    connection: Connection,
    x: int = 255,
    y: int = 255,
    p: int = 0,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> VersionInfo:
    """Ask core (x, y, p) for its software version (CMD_VER)."""
    reply = scp_call(
        connection,
        make_request(connection, x, y, p, SCPCommand.VER),
        options,
    )
    return parse_version(reply.payload)


def get_chip_summary(
    connection: Connection, x: int, y: int, options: EngineOptions = DEFAULT_OPTIONS
) -> ChipSummary:
    """CMD_INFO of chip (x, y); its coordinates come from the reply's source chip."""
    reply = scp_call(
        connection,
        make_request(connection, x, y, 0, SCPCommand.INFO, INFO_ARG),
        options,
    )
    return parse_chip_summary(reply.header.src_x, reply.header.src_y, reply.payload)


def read_dimensions(
    connection: Connection, options: EngineOptions = DEFAULT_OPTIONS
) -> tuple[int, int]:
    """The machine's (width, height) from the root chip's SV."""
    data = read_memory(connection, 255, 255, SV_BASE + SV_P2P_DIMS, 2, options=options)
    height, width = data[0], data[1]
    return width, height


def _read_p2p_table(
    connection: Connection, root: tuple[int, int], width: int, height: int, options: EngineOptions
) -> list[tuple[int, int]]:
    column_bytes = ((height + 7) // 8) * 4
    chips: list[tuple[int, int]] = []
    columns: dict[int, bytes] = {}

    def requests() -> Iterator[SCPRequest]:
        for x in range(width):
            yield make_request(
                connection,
                root[0],
                root[1],
                0,
                SCPCommand.READ,
                P2P_TABLE_BASE + 128 * x,
                column_bytes,
                2,
            )

    def keep(index: int, reply: SCPResponse) -> None:
        columns[index] = reply.payload

    scp_stream(
        connection,
        requests(),
        keep,
        options,
    )
    for x in range(width):
        for y, entry in enumerate(decode_p2p_column(columns[x], height)):
            if entry != P2P_NONE:
                chips.append((x, y))
    return chips


def get_machine_details(
    connection: Connection, options: EngineOptions = DEFAULT_OPTIONS
) -> MachineInfo:
    """Discover the machine behind ``connection`` (which must reach the root chip).

    Reads the dimensions, the root's P2P table, then CMD_INFO and the core maps of every
    chip in one windowed burst. As in spinnman, a chip that does not answer is left out.
    """
    width, height = read_dimensions(connection, options)
    root_version = get_version(connection, 255, 255, 0, options)
    root = (root_version.x, root_version.y)
    chip_list = _read_p2p_table(connection, root, width, height, options)
    summaries: dict[int, ChipSummary] = {}
    maps: dict[int, bytes] = {}

    def requests() -> Iterator[SCPRequest]:
        for x, y in chip_list:
            yield make_request(connection, x, y, 0, SCPCommand.INFO, INFO_ARG)
            yield make_request(connection, x, y, 0, SCPCommand.READ, SV_BASE + SV_P2V_MAP, 40, 2)

    def keep(index: int, reply: SCPResponse) -> None:
        x, y = chip_list[index // 2]
        if index % 2 == 0:
            summaries[index // 2] = parse_chip_summary(x, y, reply.payload)
        else:
            maps[index // 2] = reply.payload

    def skip(index: int, request: SCPRequest, error: SpinnmanException) -> None:
        pass  # a silent chip simply is not part of the machine

    scp_stream(
        connection,
        requests(),
        keep,
        options,
        on_error=skip,
    )
    machine = MachineInfo(width, height, root)
    present = {chip_list[i] for i in summaries if i in maps}
    if root not in present:
        raise SpinnmanIOException(f"the root chip {root} did not answer CMD_INFO")
    machine.chips = {xy: _placeholder() for xy in present}
    chips: dict[tuple[int, int], ChipInfo] = {}
    for index, summary in summaries.items():
        xy = chip_list[index]
        if xy not in present:
            continue
        p2v = tuple(maps[index][:20])
        v2p = tuple(maps[index][20:40])
        usable = tuple(
            core
            for core in range(1, len(summary.core_states))
            if summary.core_states[core] == CPU_STATE_IDLE
        )
        links = tuple(
            link for link in summary.working_links if machine.neighbour(*xy, link) is not None
        )
        ip = summary.ethernet_ip if summary.nearest_ethernet == xy else None
        chips[xy] = ChipInfo(
            x=xy[0],
            y=xy[1],
            n_cores=summary.n_cores,
            usable_cores=usable,
            links=links,
            sdram=summary.largest_free_sdram,
            router_entries=summary.largest_free_router_block,
            ethernet_ip=ip,
            nearest_ethernet=summary.nearest_ethernet,
            parent_link=summary.parent_link,
            p2v=p2v,
            v2p=v2p,
        )
    machine.chips = chips
    return machine


def _placeholder() -> ChipInfo:
    return ChipInfo(0, 0, 0, (), (), 0, 0, None, (0, 0), None)


def read_sv_word(
    connection: Connection, x: int, y: int, offset: int, options: EngineOptions = DEFAULT_OPTIONS
) -> int:
    """Read one word of chip (x, y)'s system variables."""
    data = read_memory(connection, x, y, SV_BASE + offset, 4, options=options)
    value: int = struct.unpack("<I", data)[0]
    return value
