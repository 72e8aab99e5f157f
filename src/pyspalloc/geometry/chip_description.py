"""Chip-level descriptions of real machines, in the JSON the Java tools record.

A description has ``width`` and ``height`` (in chips), ``root`` and a ``chips`` list whose
entries are ``[x, y, {"cores": n, "ethernet": [ex, ey], "deadLinks": [...],
"ipAddress": "..."}, {resource overrides}]``. Chips not listed do not exist; a link listed
in ``deadLinks`` does not work. Virtual boards given a description reproduce it: the same
chips, core counts and working links in discovery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from pyspalloc.geometry.chips import BOARD_CHIP_SET
from pyspalloc.geometry.coords import Chip
from pyspalloc.geometry.machine import MachineDefinitionError

__all__ = [
    "MAX_CORES",
    "BoardLayout",
    "ChipDescription",
    "RecordedChip",
    "load_chip_description",
    "parse_chip_description",
]

#: Cores of a SpiNNaker chip (monitor included).
MAX_CORES = 18
_MAX_SIZE = 256


@dataclass(frozen=True)
class RecordedChip:
    """One chip as recorded: cores (monitor included), its board's Ethernet chip, dead links."""

    x: int
    y: int
    cores: int
    ethernet: tuple[int, int]
    dead_links: frozenset[int] = frozenset()
    ip: str | None = None

    @property
    def links(self) -> tuple[int, ...]:
        """The working links (0-5)."""
        return tuple(link for link in range(6) if link not in self.dead_links)


@dataclass(frozen=True)
class BoardLayout:
    """One board's chips as recorded, in board-local coordinates (Ethernet chip = (0, 0)).

    Attributes
    ----------
    cores:
        Core count of every chip present; a board chip not listed is missing.
    dead_links:
        The links that do not work, per chip.
    """

    cores: dict[Chip, int] = field(default_factory=dict)
    dead_links: dict[Chip, frozenset[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class ChipDescription:
    """A recorded machine: its size in chips, root chip and chips by (x, y)."""

    width: int
    height: int
    root: tuple[int, int]
    chips: dict[tuple[int, int], RecordedChip]

    @property
    def wraps(self) -> tuple[bool, bool]:
        """Whether the recorded machine wraps around horizontally and vertically."""
        return self.width % 12 == 0, self.height % 12 == 0

    def boards(self) -> dict[tuple[int, int], BoardLayout]:
        """The chips grouped per board, keyed by the board's Ethernet chip."""
        layouts: dict[tuple[int, int], BoardLayout] = {}
        for chip in self.chips.values():
            ex, ey = chip.ethernet
            local = Chip((chip.x - ex) % self.width, (chip.y - ey) % self.height)
            layout = layouts.setdefault(chip.ethernet, BoardLayout())
            layout.cores[local] = chip.cores
            if chip.dead_links:
                layout.dead_links[local] = chip.dead_links
        return layouts


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MachineDefinitionError(where, f"expected an integer in {low}..{high}, got {value!r}")
    return value


def _pair(value: Any, where: str, width: int, height: int) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise MachineDefinitionError(where, f"expected [x, y], got {value!r}")
    return _int(value[0], where, 0, width - 1), _int(value[1], where, 0, height - 1)


def _chip(entry: Any, index: int, width: int, height: int) -> RecordedChip:
    where = f"chips[{index}]"
    if not isinstance(entry, list) or len(entry) < 3 or not isinstance(entry[2], dict):
        raise MachineDefinitionError(where, "expected [x, y, {details}, ...]")
    x, y = _pair(entry[:2], where, width, height)
    details: dict[str, Any] = entry[2]
    cores = _int(details.get("cores"), f"{where}.cores", 1, MAX_CORES)
    ethernet = _pair(details.get("ethernet"), f"{where}.ethernet", width, height)
    raw_dead = details.get("deadLinks", [])
    if not isinstance(raw_dead, list):
        raise MachineDefinitionError(f"{where}.deadLinks", "expected a list of links 0-5")
    dead = frozenset(_int(link, f"{where}.deadLinks", 0, 5) for link in raw_dead)
    ip = details.get("ipAddress")
    if ip is not None and not isinstance(ip, str):
        raise MachineDefinitionError(f"{where}.ipAddress", f"expected a string, got {ip!r}")
    local = Chip((x - ethernet[0]) % width, (y - ethernet[1]) % height)
    if local not in BOARD_CHIP_SET:
        raise MachineDefinitionError(
            f"{where}.ethernet", f"chip ({x}, {y}) is not on the board of {ethernet}"
        )
    return RecordedChip(x, y, cores, ethernet, dead, ip)


def parse_chip_description(obj: Any) -> ChipDescription:
    """Build a :class:`ChipDescription` from parsed JSON.

    Raises
    ------
    MachineDefinitionError
        Naming the offending field (for example ``chips[5].cores``).
    """
    if not isinstance(obj, dict):
        raise MachineDefinitionError("chips", "a chip description must be a JSON object")
    width = _int(obj.get("width"), "width", 1, _MAX_SIZE)
    height = _int(obj.get("height"), "height", 1, _MAX_SIZE)
    root = _pair(obj.get("root", [0, 0]), "root", width, height)
    entries = obj.get("chips")
    if not isinstance(entries, list) or not entries:
        raise MachineDefinitionError("chips", "expected a non-empty list of chips")
    chips: dict[tuple[int, int], RecordedChip] = {}
    for index, entry in enumerate(entries):
        chip = _chip(entry, index, width, height)
        if (chip.x, chip.y) in chips:
            raise MachineDefinitionError(f"chips[{index}]", f"chip ({chip.x}, {chip.y}) twice")
        chips[(chip.x, chip.y)] = chip
    for index, chip in enumerate(chips.values()):
        ethernet = chips.get(chip.ethernet)
        if ethernet is None or ethernet.ethernet != chip.ethernet:
            raise MachineDefinitionError(
                f"chips[{index}].ethernet",
                f"chip ({chip.x}, {chip.y}) names {chip.ethernet}, which is not an Ethernet chip",
            )
    if root not in chips:
        raise MachineDefinitionError("root", f"root chip {root} is not listed")
    return ChipDescription(width, height, root, chips)


def load_chip_description(path: str | PathLike[str]) -> ChipDescription:
    """Read a chip description file; see :func:`parse_chip_description`."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise MachineDefinitionError("chips", f"{path}: {error}") from None
    return parse_chip_description(obj)
