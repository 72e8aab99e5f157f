"""Board and chip coordinates, the six board-to-board directions and torus movement.

Boards are addressed logically by :class:`Triad` ``(x, y, z)``: ``x, y`` pick a triad of
a machine ``width`` x ``height`` triads in size, ``z`` in {0, 1, 2} the board within it.
Movement between boards wraps on the torus.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "CHIP_LINK_DELTAS",
    "FPGA_BANK_STRIDE",
    "FPGA_FLAG_REGISTER",
    "FPGA_STOP_REGISTER",
    "BOARD_LINK_CHIP_DELTAS",
    "Chip",
    "Direction",
    "Physical",
    "Triad",
    "fpga_for",
    "fpga_stop_address",
    "neighbour",
    "TRIAD_CHIPS",
]

#: A triad tiles this many chips in x and in y.
TRIAD_CHIPS = 12

#: Offset of the FPGA "STOP" register within a link bank; writing 1 stops the link.
FPGA_STOP_REGISTER = 0x5C
#: Distance between the two register banks of one FPGA.
FPGA_BANK_STRIDE = 0x10000
#: Address of the FPGA FLAG register, whose low two bits hold the FPGA number.
FPGA_FLAG_REGISTER = 0x40004


class Triad(NamedTuple):
    """Logical board coordinates: triad ``(x, y)`` and board ``z`` within it."""

    x: int
    y: int
    z: int


class Physical(NamedTuple):
    """Physical board location: cabinet, frame and board slot (0-23)."""

    cabinet: int
    frame: int
    board: int


class Chip(NamedTuple):
    """Chip coordinates (machine-wide or board-local, depending on context)."""

    x: int
    y: int


_JAVA_NAMES = ("SE", "E", "N", "NW", "W", "S")
_JAVA_INDEX = (2, 1, 0, 5, 4, 3)
_OLD_NAMES = ("east", "north_east", "north", "west", "south_west", "south")
# (fpga, bank) per direction, in Direction order.
_FPGA = ((0, 0), (2, 1), (2, 0), (1, 1), (1, 0), (0, 1))


class Direction(IntEnum):
    """A board-to-board link, numbered like chip links (opposite = (d + 3) mod 6).

    The Java service names the same six directions differently; see
    :attr:`java_name` and :meth:`from_java_name`.
    """

    EAST = 0
    NORTH_EAST = 1
    NORTH = 2
    WEST = 3
    SOUTH_WEST = 4
    SOUTH = 5

    @property
    def opposite(self) -> Direction:
        """The direction pointing back along the same link."""
        return Direction((self.value + 3) % 6)

    @property
    def java_name(self) -> str:
        """The Java service's name: ``SE, E, N, NW, W, S`` for ``EAST ... SOUTH``."""
        return _JAVA_NAMES[self.value]

    @property
    def java_index(self) -> int:
        """The Java service's ordinal (``N=0, E=1, SE=2, S=3, W=4, NW=5``)."""
        return _JAVA_INDEX[self.value]

    @property
    def old_name(self) -> str:
        """The old Python server's name (``"east"``, ``"north_east"``, ...)."""
        return _OLD_NAMES[self.value]

    @classmethod
    def from_java_name(cls, name: str) -> Direction:
        """Look up a direction by its Java name (case-insensitive).

        Raises
        ------
        ValueError
            If ``name`` is not one of ``SE, E, N, NW, W, S``.
        """
        try:
            return cls(_JAVA_NAMES.index(name.strip().upper()))
        except ValueError:
            raise ValueError(f"unknown Java direction name {name!r}") from None

    @classmethod
    def from_java_index(cls, index: int) -> Direction:
        """Look up a direction by its Java ordinal (0-5)."""
        if not 0 <= index < 6:
            raise ValueError(f"Java direction index out of range: {index}")
        return cls(_JAVA_INDEX.index(index))

    @classmethod
    def from_name(cls, name: str) -> Direction:
        """Look up a direction by its old-style name in any common spelling.

        Accepts ``"south_west"``, ``"southWest"``, ``"south-west"``, ``"SOUTH_WEST"``
        and the like.

        Raises
        ------
        ValueError
            If the name is not recognised.
        """
        key = "".join(ch for ch in name.lower() if ch.isalpha())
        for direction in cls:
            if direction.old_name.replace("_", "") == key:
                return direction
        raise ValueError(f"unknown link name {name!r}")


#: Chip-link vectors (dx, dy) in :class:`Direction` order.
CHIP_LINK_DELTAS: tuple[tuple[int, int], ...] = ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))

#: Vector between the Ethernet chips of neighbouring boards, in :class:`Direction` order.
BOARD_LINK_CHIP_DELTAS: tuple[tuple[int, int], ...] = (
    (4, -4),
    (8, 4),
    (4, 8),
    (-4, 4),
    (-8, -4),
    (-4, -8),
)

# Movement (dx, dy, dz) indexed by [z][direction].
_MOVES: tuple[tuple[tuple[int, int, int], ...], ...] = (
    ((0, -1, 2), (0, 0, 1), (0, 0, 2), (-1, 0, 1), (-1, -1, 2), (-1, -1, 1)),
    ((1, 0, -1), (1, 0, 1), (1, 1, -1), (0, 0, 1), (0, 0, -1), (0, -1, 1)),
    ((0, 0, -1), (1, 1, -2), (0, 1, -1), (0, 1, -2), (-1, 0, -1), (0, 0, -2)),
)


def neighbour(triad: Triad, direction: Direction, width: int, height: int) -> Triad:
    """Return the board across ``direction`` from ``triad`` on a torus of triads.

    Parameters
    ----------
    triad:
        The starting board.
    direction:
        Which of its six links to follow.
    width, height:
        Machine size in triads; x and y wrap modulo these.
    """
    x, y, z = triad
    dx, dy, dz = _MOVES[z][direction]
    return Triad((x + dx) % width, (y + dy) % height, z + dz)


def fpga_for(direction: Direction) -> tuple[int, int]:
    """Return ``(fpga, bank)`` of the FPGA register bank that serves ``direction``."""
    return _FPGA[direction]


def fpga_stop_address(direction: Direction) -> tuple[int, int]:
    """Return ``(fpga, address)`` of the STOP register that disables ``direction``."""
    fpga, bank = _FPGA[direction]
    return fpga, bank * FPGA_BANK_STRIDE + FPGA_STOP_REGISTER
