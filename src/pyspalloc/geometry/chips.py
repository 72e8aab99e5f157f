"""Chips of a SpiNN-5 board and the mapping between machine chips and boards."""

from __future__ import annotations

from pyspalloc.geometry.coords import (
    BOARD_LINK_CHIP_DELTAS,
    CHIP_LINK_DELTAS,
    TRIAD_CHIPS,
    Chip,
    Direction,
    Triad,
)

__all__ = [
    "allocation_chip_size",
    "job_chip_to_machine",
    "machine_chip_to_job",
    "BOARD_CHIPS",
    "BOARD_CHIP_SET",
    "BOARD_EDGE_LINKS",
    "ETHERNET_OFFSETS",
    "board_chip_to_machine",
    "chip_to_board",
    "ethernet_chip",
    "machine_chip_size",
]

# Board-local x range per row y (inclusive) of the 48-chip "sheared hexagon".
_ROWS = ((0, 4), (0, 5), (0, 6), (0, 7), (1, 7), (2, 7), (3, 7), (4, 7))

#: The 48 board-local chips of a SpiNN-5 board, sorted by (x, y); (0, 0) is Ethernet.
BOARD_CHIPS: tuple[Chip, ...] = tuple(
    sorted(Chip(x, y) for y, (lo, hi) in enumerate(_ROWS) for x in range(lo, hi + 1))
)
#: :data:`BOARD_CHIPS` as a frozenset, for membership tests.
BOARD_CHIP_SET: frozenset[Chip] = frozenset(BOARD_CHIPS)


def _edge_links() -> dict[tuple[Chip, int], tuple[Direction, Chip]]:
    table: dict[tuple[Chip, int], tuple[Direction, Chip]] = {}
    for chip in BOARD_CHIPS:
        for link, (dx, dy) in enumerate(CHIP_LINK_DELTAS):
            nx, ny = chip.x + dx, chip.y + dy
            if Chip(nx, ny) in BOARD_CHIP_SET:
                continue
            for direction in Direction:
                bx, by = BOARD_LINK_CHIP_DELTAS[direction]
                local = Chip(nx - bx, ny - by)
                if local in BOARD_CHIP_SET:
                    table[(chip, link)] = (direction, local)
                    break
    return table


#: For each chip link that leaves a board, ``(board chip, chip link)``: the board-to-board
#: direction it crosses and the chip it reaches on the neighbouring board.
BOARD_EDGE_LINKS: dict[tuple[Chip, int], tuple[Direction, Chip]] = _edge_links()

#: Ethernet chip of board z within its triad's 12 x 12 tile.
ETHERNET_OFFSETS: tuple[Chip, ...] = (Chip(0, 0), Chip(8, 4), Chip(4, 8))

# Which z owns each chip of the 12 x 12 tile, top row (y = 11) first.
_OWNER_ROWS = (
    "111122222222",
    "111122222221",
    "111122222211",
    "111122222111",
    "111100001111",
    "111000001111",
    "110000001111",
    "100000001111",
    "000000002222",
    "000000022222",
    "000000222222",
    "000002222222",
)


def _build_offsets() -> tuple[tuple[tuple[int, Chip], ...], ...]:
    rows: list[tuple[tuple[int, Chip], ...]] = []
    for y in range(TRIAD_CHIPS):
        line = _OWNER_ROWS[TRIAD_CHIPS - 1 - y]
        row: list[tuple[int, Chip]] = []
        for x in range(TRIAD_CHIPS):
            z = int(line[x])
            ex, ey = ETHERNET_OFFSETS[z]
            row.append((z, Chip((x - ex) % TRIAD_CHIPS, (y - ey) % TRIAD_CHIPS)))
        rows.append(tuple(row))
    return tuple(rows)


# _TILE[y][x] = (z of the owning board, board-local chip), for a chip of the 12x12 tile.
_TILE = _build_offsets()


def ethernet_chip(triad: Triad) -> Chip:
    """Return the machine coordinates of the Ethernet chip of board ``triad``."""
    tx, ty, tz = triad
    ex, ey = ETHERNET_OFFSETS[tz]
    return Chip(TRIAD_CHIPS * tx + ex, TRIAD_CHIPS * ty + ey)


def chip_to_board(chip: Chip, width: int, height: int) -> tuple[Triad, Chip]:
    """Map a machine chip to its board and its board-local chip.

    The chip is first reduced modulo the torus size (``12 * width`` by ``12 * height``).

    Parameters
    ----------
    chip:
        Machine chip coordinates.
    width, height:
        Machine size in triads.

    Returns
    -------
    tuple[Triad, Chip]
        The owning board and the chip's offset from that board's Ethernet chip.
    """
    cw, ch = TRIAD_CHIPS * width, TRIAD_CHIPS * height
    cx, cy = chip
    x, y = cx % cw, cy % ch
    z, local = _TILE[y % TRIAD_CHIPS][x % TRIAD_CHIPS]
    eth_x = (x - local.x) % cw
    eth_y = (y - local.y) % ch
    return Triad(eth_x // TRIAD_CHIPS, eth_y // TRIAD_CHIPS, z), local


def board_chip_to_machine(triad: Triad, local: Chip, width: int, height: int) -> Chip:
    """Return the machine chip at board-local ``local`` of board ``triad`` (wrapped)."""
    ex, ey = ethernet_chip(triad)
    lx, ly = local
    return Chip((ex + lx) % (TRIAD_CHIPS * width), (ey + ly) % (TRIAD_CHIPS * height))


def machine_chip_size(width: int, height: int, *, single_board: bool = False) -> Chip:
    """Return the torus size in chips of a ``width`` x ``height`` triad machine.

    A lone board (``single_board``) is 8 x 8 chips and does not wrap.
    """
    if single_board:
        return Chip(8, 8)
    return Chip(TRIAD_CHIPS * width, TRIAD_CHIPS * height)


def allocation_chip_size(
    width: int, height: int, depth: int, machine_width: int, machine_height: int
) -> Chip:
    """Return a job's size in chips as the v1 protocol reports it.

    8 x 8 for a single board (``depth == 1``); otherwise ``12 w`` (plus 4 unless the job
    spans the whole machine width and so wraps) by ``12 h`` (likewise).
    """
    if depth == 1:
        return Chip(8, 8)
    return Chip(
        TRIAD_CHIPS * width + (0 if width >= machine_width else 4),
        TRIAD_CHIPS * height + (0 if height >= machine_height else 4),
    )


def job_chip_to_machine(root: Triad, chip: Chip, width: int, height: int) -> Chip:
    """Return the machine chip at job-relative ``chip`` of a job rooted at board ``root``.

    ``width``, ``height`` are the machine's size in triads; the result wraps.
    """
    return board_chip_to_machine(root, chip, width, height)


def machine_chip_to_job(root: Triad, chip: Chip, width: int, height: int) -> Chip:
    """Return the job-relative coordinates of machine ``chip`` for a job rooted at ``root``."""
    ex, ey = ethernet_chip(root)
    cx, cy = chip
    return Chip((cx - ex) % (TRIAD_CHIPS * width), (cy - ey) % (TRIAD_CHIPS * height))
