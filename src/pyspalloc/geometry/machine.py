"""Machine definitions: which boards exist, where they are, and their addresses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from pyspalloc.geometry.chips import chip_to_board, ethernet_chip
from pyspalloc.geometry.coords import TRIAD_CHIPS, Chip, Direction, Physical, Triad, neighbour

__all__ = ["BoardDefinition", "Frame", "MachineDefinition", "MachineDefinitionError"]


class MachineDefinitionError(ValueError):
    """A machine definition is malformed or inconsistent.

    Parameters
    ----------
    field:
        The offending field (for example ``"spinnaker-ips"``), included in the message.
    message:
        What is wrong with it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class BoardDefinition:
    """One board slot that has a physical location.

    Attributes
    ----------
    triad:
        Logical coordinates.
    physical:
        Cabinet, frame and slot.
    ip:
        Address of the board's Ethernet chip (may be empty for a dead board).
    bmp_ip:
        Address of the BMP of the board's frame.
    functioning:
        False for a board listed as dead.
    """

    triad: Triad
    physical: Physical
    ip: str
    bmp_ip: str
    functioning: bool = True


@dataclass(frozen=True)
class Frame:
    """The boards of one frame, all controlled through one BMP."""

    cabinet: int
    frame: int
    bmp_ip: str
    boards: tuple[BoardDefinition, ...]


@dataclass(frozen=True)
class MachineDefinition:
    """A whole machine: a torus of ``width`` x ``height`` triads.

    Attributes
    ----------
    name:
        Machine name.
    tags:
        Tags used to select the machine.
    width, height:
        Size in triads.
    boards:
        Every board slot with a physical location (dead or alive).
    dead_links:
        Links listed as dead, as (board, direction) seen from one end.
    bmp_ips:
        BMP address per ``(cabinet, frame)``.
    chips:
        Path of a chip-level description of the real machine (see
        :mod:`pyspalloc.geometry.chip_description`) for virtual boards to reproduce;
        empty for perfect boards.

    Treat an instance as immutable: lookups are indexed when it is created.
    """

    name: str
    tags: tuple[str, ...]
    width: int
    height: int
    boards: dict[Triad, BoardDefinition]
    dead_links: frozenset[tuple[Triad, Direction]] = frozenset()
    bmp_ips: dict[tuple[int, int], str] = field(default_factory=dict)
    chips: str = ""
    _by_ip: dict[str, BoardDefinition] = field(init=False, repr=False, compare=False)
    _by_physical: dict[Physical, BoardDefinition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tags = self.tags
        object.__setattr__(
            self, "tags", tuple(sorted(tags) if isinstance(tags, set | frozenset) else tags)
        )
        object.__setattr__(
            self, "dead_links", frozenset((Triad(*t), Direction(d)) for t, d in self.dead_links)
        )
        by_ip = {b.ip: b for b in self.boards.values() if b.ip}
        by_physical = {b.physical: b for b in self.boards.values()}
        object.__setattr__(self, "_by_ip", by_ip)
        object.__setattr__(self, "_by_physical", by_physical)

    def __hash__(self) -> int:
        return hash((self.name, self.width, self.height, len(self.boards)))

    @property
    def single_board(self) -> bool:
        """True when the definition has exactly one board location (depth 1)."""
        return len(self.boards) == 1

    @property
    def depth(self) -> int:
        """1 for a single-board machine, else 3."""
        return 1 if self.single_board else 3

    @property
    def chip_width(self) -> int:
        """Torus width in chips (8 for a single board)."""
        return 8 if self.single_board else TRIAD_CHIPS * self.width

    @property
    def chip_height(self) -> int:
        """Torus height in chips (8 for a single board)."""
        return 8 if self.single_board else TRIAD_CHIPS * self.height

    @property
    def max_chip_x(self) -> int:
        """Largest chip x as the Java loader records it: ``12 * max(x) + 11``."""
        return TRIAD_CHIPS * max((t.x for t in self.boards), default=0) + TRIAD_CHIPS - 1

    @property
    def max_chip_y(self) -> int:
        """Largest chip y as the Java loader records it: ``12 * max(y) + 11``."""
        return TRIAD_CHIPS * max((t.y for t in self.boards), default=0) + TRIAD_CHIPS - 1

    def all_triads(self) -> Iterator[Triad]:
        """Iterate over all ``3 * width * height`` board slots in (x, y, z) order."""
        for x in range(self.width):
            for y in range(self.height):
                for z in range(3):
                    yield Triad(x, y, z)

    @cached_property
    def functioning_boards(self) -> frozenset[Triad]:
        """Boards that exist and are not dead."""
        return frozenset(t for t, b in self.boards.items() if b.functioning)

    @cached_property
    def dead_boards(self) -> frozenset[Triad]:
        """Slots with no location or whose board is not functioning."""
        live = self.functioning_boards
        return frozenset(t for t in self.all_triads() if t not in live)

    @cached_property
    def frames(self) -> dict[tuple[int, int], Frame]:
        """Boards grouped per ``(cabinet, frame)``, sorted by slot, with the BMP address."""
        grouped: dict[tuple[int, int], list[BoardDefinition]] = {}
        for board in self.boards.values():
            grouped.setdefault(board.physical[:2], []).append(board)
        return {
            key: Frame(
                key[0],
                key[1],
                self.bmp_ips.get(key, ""),
                tuple(sorted(boards, key=lambda b: b.physical.board)),
            )
            for key, boards in sorted(grouped.items())
        }

    def board(self, triad: Triad) -> BoardDefinition | None:
        """Return the board at ``triad``, or None if that slot has no location."""
        return self.boards.get(Triad(*triad))

    def board_at_physical(self, physical: Physical) -> BoardDefinition | None:
        """Return the board in physical slot ``physical``, or None."""
        return self._by_physical.get(Physical(*physical))

    def board_at_ip(self, ip: str) -> BoardDefinition | None:
        """Return the board whose Ethernet chip has address ``ip``, or None."""
        return self._by_ip.get(ip)

    def board_at_chip(self, chip: Chip) -> BoardDefinition | None:
        """Return the board holding machine chip ``chip`` (wrapped), or None."""
        if self.single_board and not (0 <= chip[0] < 8 and 0 <= chip[1] < 8):
            return None
        triad, _ = self.locate_chip(chip)
        return self.boards.get(triad)

    def locate_chip(self, chip: Chip) -> tuple[Triad, Chip]:
        """Return (board, board-local chip) for a machine chip, wrapping on the torus."""
        return chip_to_board(Chip(*chip), self.width, self.height)

    def ethernet_chip(self, triad: Triad) -> Chip:
        """Return the machine coordinates of a board's Ethernet chip."""
        return ethernet_chip(Triad(*triad))

    def neighbour(self, triad: Triad, direction: Direction) -> Triad:
        """Return the slot across ``direction`` from ``triad`` (torus wrap)."""
        return neighbour(Triad(*triad), Direction(direction), self.width, self.height)

    def is_functioning(self, triad: Triad) -> bool:
        """True if ``triad`` has a location and is not dead."""
        return triad in self.functioning_boards

    def live_link(self, triad: Triad, direction: Direction) -> bool:
        """True if both ends of the link exist and work and neither end lists it dead."""
        live, dead = self.functioning_boards, self.dead_links
        if triad not in live:
            return False
        other = neighbour(triad, direction, self.width, self.height)
        return (
            other in live
            and (triad, direction) not in dead
            and (other, (direction + 3) % 6) not in dead
        )

    def live_links(self) -> list[tuple[Triad, Direction, Triad]]:
        """Every live board-to-board link once, as ``(board, direction, other board)``.

        A link is listed from the end with the smaller (triad, direction); on a small
        torus two boards may be joined by several links, each listed.
        """
        links: list[tuple[Triad, Direction, Triad]] = []
        for triad in sorted(self.functioning_boards):
            for direction in Direction:
                if not self.live_link(triad, direction):
                    continue
                other = self.neighbour(triad, direction)
                if (other, direction.opposite) < (triad, direction):
                    continue
                links.append((triad, direction, other))
        return links
