"""What a transceiver learns about a machine: SC&MP version, chip summaries, the machine.

Pure data and decoders of SCP reply payloads (CMD_VER, CMD_INFO, the P2P table).
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from pyspalloc.exceptions import SpinnmanIOException

__all__ = [
    "CHIP_LINK_DELTAS",
    "ChipInfo",
    "ChipSummary",
    "MachineInfo",
    "VersionInfo",
    "decode_p2p_column",
    "parse_chip_summary",
    "parse_version",
]

#: Chip-link vectors (dx, dy) for links 0..5 (E, NE, N, W, SW, S).
CHIP_LINK_DELTAS: tuple[tuple[int, int], ...] = ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))

#: P2P table entry meaning "no route / no such chip".
P2P_NONE = 6
#: Core state meaning "idle, free for an application".
CPU_STATE_IDLE = 15


@dataclass(frozen=True)
class VersionInfo:
    """The answer to CMD_VER.

    Attributes
    ----------
    x, y, p:
        The core that answered (x = y = 255 while the board is still booting).
    physical_cpu:
        Its physical core number.
    buffer_size:
        SDP buffer size (256).
    build_date:
        Firmware build time, in unix seconds.
    name, hardware:
        E.g. ``"SC&MP"`` and ``"SpiNNaker"`` (``"BC&MP"`` for a BMP).
    version:
        (major, minor, patch).
    """

    x: int
    y: int
    p: int
    physical_cpu: int
    buffer_size: int
    build_date: int
    name: str
    hardware: str
    version: tuple[int, int, int]

    @property
    def version_string(self) -> str:
        """``"4.0.0"``."""
        return ".".join(str(part) for part in self.version)


def parse_version(payload: bytes) -> VersionInfo:
    """Decode a CMD_VER reply payload."""
    if len(payload) < 12:
        raise SpinnmanIOException(f"VER reply payload is {len(payload)} bytes; need >= 12")
    arg1, arg2, build_date = struct.unpack_from("<3I", payload, 0)
    text = payload[12:]
    if text.endswith(b"\0"):
        text = text[:-1]
    marker = arg2 >> 16
    if marker == 0xFFFF:
        label, _, number = text.partition(b"\0")
        match = re.match(rb"(\d+)\.(\d+)\.(\d+)", number)
        if match is None:
            raise SpinnmanIOException(f"VER reply has no a.b.c version: {number!r}")
        version = (int(match[1]), int(match[2]), int(match[3]))
    else:
        label = text.split(b"\0", 1)[0]
        version = (marker // 100, marker % 100, 0)
    name, _, hardware = label.decode("ascii", "replace").partition("/")
    return VersionInfo(
        x=(arg1 >> 24) & 0xFF,
        y=(arg1 >> 16) & 0xFF,
        p=arg1 & 0xFF,
        physical_cpu=(arg1 >> 8) & 0xFF,
        buffer_size=arg2 & 0xFFFF,
        build_date=build_date,
        name=name,
        hardware=hardware,
        version=version,
    )


@dataclass(frozen=True)
class ChipSummary:
    """The answer to CMD_INFO for one chip."""

    x: int
    y: int
    n_cores: int
    working_links: tuple[int, ...]
    largest_free_router_block: int
    ethernet_up: bool
    largest_free_sdram: int
    largest_free_sysram: int
    core_states: tuple[int, ...]
    nearest_ethernet: tuple[int, int]
    ethernet_ip: str | None
    parent_link: int | None


def parse_chip_summary(x: int, y: int, payload: bytes) -> ChipSummary:
    """Decode a CMD_INFO reply payload from chip (x, y) (the reply's SDP source)."""
    if len(payload) < 38:
        raise SpinnmanIOException(f"INFO reply from {x},{y} is {len(payload)} bytes; need 38")
    flags, sdram, sysram = struct.unpack_from("<3I", payload, 0)
    states = tuple(payload[12:30])
    eth_y, eth_x = payload[30], payload[31]
    ip_bytes = bytes(payload[32:36])
    (parent,) = struct.unpack_from("<H", payload, 36)
    n_cores = flags & 0x1F
    return ChipSummary(
        x=x,
        y=y,
        n_cores=n_cores,
        working_links=tuple(link for link in range(6) if flags >> (8 + link) & 1),
        largest_free_router_block=(flags >> 14) & 0x7FF,
        ethernet_up=bool(flags >> 25 & 1),
        largest_free_sdram=sdram,
        largest_free_sysram=sysram,
        core_states=states[: min(n_cores, 18)],
        nearest_ethernet=(eth_x, eth_y),
        ethernet_ip=None if ip_bytes == bytes(4) else socket.inet_ntoa(ip_bytes),
        parent_link=parent if parent <= 5 else None,
    )


def decode_p2p_column(data: bytes, height: int) -> list[int]:
    """The 3-bit P2P table entries for y = 0 .. height - 1 of one column."""
    entries: list[int] = []
    for y in range(height):
        (word,) = struct.unpack_from("<I", data, (y >> 3) * 4)
        entries.append((word >> (3 * (y & 7))) & 7)
    return entries


@dataclass(frozen=True)
class ChipInfo:
    """One chip of a discovered machine.

    Attributes
    ----------
    n_cores:
        Working cores, including the monitor (core 0).
    usable_cores:
        Virtual ids of application cores (1..) that were idle when discovered.
    links:
        Working links (0..5) whose neighbour chip is also in the machine.
    sdram:
        Largest free SDRAM block, in bytes.
    router_entries:
        Largest free block of multicast router entries.
    ethernet_ip:
        The chip's own Ethernet address, if it is an Ethernet chip.
    nearest_ethernet:
        (x, y) of the Ethernet chip of this chip's board.
    parent_link:
        The link towards the root (None on the root).
    p2v, v2p:
        Physical-to-virtual and virtual-to-physical core maps (0xFF = none).
    """

    x: int
    y: int
    n_cores: int
    usable_cores: tuple[int, ...]
    links: tuple[int, ...]
    sdram: int
    router_entries: int
    ethernet_ip: str | None
    nearest_ethernet: tuple[int, int]
    parent_link: int | None
    p2v: tuple[int, ...] = ()
    v2p: tuple[int, ...] = ()

    @property
    def is_ethernet(self) -> bool:
        """Whether this chip has its own Ethernet connection."""
        return self.ethernet_ip is not None


@dataclass
class MachineInfo:
    """A discovered machine: size, root chip and chips by (x, y)."""

    width: int
    height: int
    root: tuple[int, int] = (0, 0)
    chips: dict[tuple[int, int], ChipInfo] = field(default_factory=dict)

    @property
    def n_chips(self) -> int:
        """Number of chips."""
        return len(self.chips)

    @property
    def total_cores(self) -> int:
        """All working cores, monitors included (864 for one SpiNN-5 board)."""
        return sum(chip.n_cores for chip in self.chips.values())

    @property
    def total_available_user_cores(self) -> int:
        """Application cores that were idle at discovery."""
        return sum(len(chip.usable_cores) for chip in self.chips.values())

    @property
    def ethernet_chips(self) -> list[ChipInfo]:
        """The chips with their own Ethernet, in (x, y) order."""
        return [self.chips[key] for key in sorted(self.chips) if self.chips[key].is_ethernet]

    @property
    def wraps(self) -> tuple[bool, bool]:
        """Whether the machine wraps horizontally and vertically (a torus of triads)."""
        return self.width % 12 == 0, self.height % 12 == 0

    def neighbour(self, x: int, y: int, link: int) -> tuple[int, int] | None:
        """The chip across ``link`` from (x, y), if it exists."""
        dx, dy = CHIP_LINK_DELTAS[link]
        nx, ny = x + dx, y + dy
        wrap_x, wrap_y = self.wraps
        if wrap_x:
            nx %= self.width
        if wrap_y:
            ny %= self.height
        return (nx, ny) if (nx, ny) in self.chips else None

    def nearest_ethernet(self, x: int, y: int) -> tuple[int, int]:
        """The Ethernet chip serving (x, y) (the root when the chip is unknown)."""
        chip = self.chips.get((x, y))
        return chip.nearest_ethernet if chip is not None else self.root

    def __iter__(self) -> Iterator[ChipInfo]:
        """Iterate over the chips in (x, y) order."""
        return iter(self.chips[key] for key in sorted(self.chips))

    def __contains__(self, xy: object) -> bool:
        return xy in self.chips
