"""Board allocation for one machine (pure: no I/O, no database).

Follows the Java service's rules: one board picks any free board; N boards picks a
near-square rectangle of triads with some tolerance for missing boards; W x H picks that
rectangle; a specific board picks just that board; W x H at a board roots the rectangle
there. A rectangle's job gets every free board in it that is connected to the root
board (z = 0) over live links inside the rectangle, wrapping on the torus. Every triad
position is tried as a root.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from pyspalloc.geometry import (
    TRIAD_CHIPS,
    Chip,
    Direction,
    MachineDefinition,
    Triad,
    ethernet_chip,
    neighbour,
)

__all__ = [
    "Allocation",
    "AllocationRequest",
    "Allocator",
    "RequestKind",
    "classify",
    "connections_for",
    "describe",
    "estimate_dimensions",
    "job_order",
    "perimeter_for",
]

_DIRECTIONS = tuple(Direction)
_OPPOSITES = tuple(d.opposite for d in Direction)


class RequestKind(enum.Enum):
    """What an :class:`AllocationRequest` asks for."""

    SINGLE = "single board"
    NUM_BOARDS = "number of boards"
    RECTANGLE = "rectangle"
    BOARD = "specific board"
    RECTANGLE_AT_BOARD = "rectangle at board"


@dataclass(frozen=True)
class AllocationRequest:
    """A request for boards on one machine.

    Parameters
    ----------
    num_boards:
        At least this many boards (not with ``width``/``height``/``board``).
    width, height:
        A rectangle of this many triads (both or neither).
    board:
        A specific board; with ``width``/``height``, the root (z = 0) of the rectangle.
    max_dead_boards:
        How many boards of the rectangle (or of ``num_boards``) may be missing.

    Raises
    ------
    ValueError
        If the combination of fields is not one of the request kinds.
    """

    num_boards: int | None = None
    width: int | None = None
    height: int | None = None
    board: Triad | None = None
    max_dead_boards: int = 0

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        if self.num_boards is not None and (self.width is not None or self.board is not None):
            raise ValueError("num_boards cannot be combined with dimensions or a board")
        for label, value in (
            ("num_boards", self.num_boards),
            ("width", self.width),
            ("height", self.height),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{label} must be at least 1, got {value}")
        if self.max_dead_boards < 0:
            raise ValueError(f"max_dead_boards must not be negative, got {self.max_dead_boards}")
        if self.board is not None:
            object.__setattr__(self, "board", Triad(*self.board))


@dataclass(frozen=True)
class Allocation:
    """The result of a successful allocation.

    Attributes
    ----------
    boards:
        The job's boards, in job order (relative x, then y, then z from the root).
    root:
        The job's root board; its Ethernet chip is job chip (0, 0).
    width, height, depth:
        Size in triads, and 1 (single board) or 3.
    perimeter:
        Every (job board, direction) whose link leaves the job or is dead; these links
        are switched off at power-on.
    connections:
        (Ethernet chip relative to the root's, IP address) per board, in job order.
    """

    boards: list[Triad]
    root: Triad
    width: int
    height: int
    depth: int
    perimeter: list[tuple[Triad, Direction]]
    connections: list[tuple[Chip, str]]


def classify(request: AllocationRequest) -> RequestKind:
    """Return the kind of ``request`` (1 x 1 with ``max_dead_boards == 2`` is one board)."""
    if request.width is not None:
        if request.board is not None:
            return RequestKind.RECTANGLE_AT_BOARD
        if request.width == request.height == 1 and request.max_dead_boards == 2:
            return RequestKind.SINGLE
        return RequestKind.RECTANGLE
    if request.board is not None:
        return RequestKind.BOARD
    if request.num_boards is None or request.num_boards == 1:
        return RequestKind.SINGLE
    return RequestKind.NUM_BOARDS


def describe(request: AllocationRequest) -> str:
    """Return a short human-readable description of ``request``."""
    kind = classify(request)
    dead = f" (up to {request.max_dead_boards} dead)" if request.max_dead_boards else ""
    if kind is RequestKind.SINGLE:
        return "1 board"
    if kind is RequestKind.NUM_BOARDS:
        return f"{request.num_boards} boards{dead}"
    if kind is RequestKind.BOARD:
        return f"board {tuple(request.board or ())}"
    size = f"{request.width}x{request.height} triads{dead}"
    if kind is RequestKind.RECTANGLE_AT_BOARD:
        return f"{size} at board {tuple(request.board or ())}"
    return size


def estimate_dimensions(num_boards: int, width: int, height: int) -> tuple[int, int, int]:
    """Return ``(w, h, tolerance)``: the near-square rectangle for ``num_boards`` boards.

    ``t = ceil(n / 3)``, ``w = min(ceil(sqrt(t)), W)``, ``h = min(ceil(t / w), H)`` and
    ``tolerance = 3wh - n``. When clamping to the machine height leaves too few triads,
    the rectangle is widened instead (so a request that fits the machine can be met).
    The tolerance is negative when the machine is too small.
    """
    triads = -(-num_boards // 3)
    w = math.isqrt(triads)
    w = min(w if w * w == triads else w + 1, width)
    h = min(-(-triads // w), height)
    if w * h < triads:
        h = height
        w = min(-(-triads // h), width)
    return w, h, 3 * w * h - num_boards


def job_order(boards: Iterable[Triad], root: Triad, width: int, height: int) -> list[Triad]:
    """Sort boards by (x, y, z) relative to ``root``, wrapping; the root comes first."""
    rx, ry = root[0], root[1]
    return sorted(
        (Triad(*t) for t in boards),
        key=lambda t: ((t[0] - rx) % width, (t[1] - ry) % height, (t[2] - root[2]) % 3),
    )


def connections_for(
    machine: MachineDefinition, boards: Iterable[Triad], root: Triad
) -> list[tuple[Chip, str]]:
    """Return (Ethernet chip relative to the root's, IP) per board, in job order.

    Relative chips wrap modulo the machine's ``12 W`` x ``12 H`` chips.
    """
    cw, ch = TRIAD_CHIPS * machine.width, TRIAD_CHIPS * machine.height
    rx, ry = ethernet_chip(Triad(*root))
    result: list[tuple[Chip, str]] = []
    for triad in job_order(boards, root, machine.width, machine.height):
        ex, ey = ethernet_chip(triad)
        board = machine.boards.get(triad)
        result.append((Chip((ex - rx) % cw, (ey - ry) % ch), board.ip if board else ""))
    return result


def perimeter_for(
    machine: MachineDefinition, boards: Collection[Triad]
) -> list[tuple[Triad, Direction]]:
    """Return every (board, direction) of the job whose link leaves it or is dead."""
    job = {Triad(*t) for t in boards}
    result: list[tuple[Triad, Direction]] = []
    for triad in sorted(job):
        for d in _DIRECTIONS:
            other = neighbour(triad, d, machine.width, machine.height)
            if other not in job or not machine.live_link(triad, d):
                result.append((triad, d))
    return result


class Allocator:
    """Chooses boards for requests on one machine.

    Parameters
    ----------
    machine:
        The machine; its structure (boards, dead boards and links) is read once.
    """

    def __init__(self, machine: MachineDefinition) -> None:
        self.machine = machine
        self.width, self.height = machine.width, machine.height
        self.functioning: frozenset[Triad] = machine.functioning_boards
        w, h = self.width, self.height
        # Per functioning board and direction: the neighbour if the link is live, else None.
        live, dead = self.functioning, machine.dead_links
        self._links: dict[Triad, tuple[Triad | None, ...]] = {}
        for t in live:
            ends: list[Triad | None] = []
            for d, back in zip(_DIRECTIONS, _OPPOSITES, strict=True):
                other = neighbour(t, d, w, h)
                ok = other in live and (t, d) not in dead and (other, back) not in dead
                ends.append(other if ok else None)
            self._links[t] = tuple(ends)
        self._possible: dict[AllocationRequest, bool] = {}
        #: the last preference seen and each board's place in it (callers reuse one list)
        self._ranked: tuple[Sequence[Triad], dict[Triad, int]] | None = None

    # ---- queries -----------------------------------------------------------------
    def is_possible(self, request: AllocationRequest) -> bool:
        """Return whether ``request`` could ever be met on this machine (all boards free)."""
        cached = self._possible.get(request)
        if cached is None:
            cached = self.allocate(request, self.functioning) is not None
            self._possible[request] = cached
        return cached

    def allocate(
        self,
        request: AllocationRequest,
        available: Collection[Triad],
        preference: Sequence[Triad] | None = None,
    ) -> Allocation | None:
        """Choose boards for ``request`` from ``available``, or return None.

        Parameters
        ----------
        request:
            What to allocate.
        available:
            The free, functioning, in-service boards (others are ignored).
        preference:
            Optional board order to prefer (e.g. longest-rested first); for rectangles it
            orders the candidate roots. Without it, the lowest board/root wins.
        """
        kind = classify(request)
        if kind is RequestKind.SINGLE:
            return self._single(self._pick_single(available, preference))
        if kind is RequestKind.BOARD:
            board = request.board
            ok = board is not None and board in available and board in self.functioning
            return self._single(board if ok else None)
        if kind is RequestKind.NUM_BOARDS:
            assert request.num_boards is not None
            w, h, tolerance = estimate_dimensions(request.num_boards, self.width, self.height)
            need = request.num_boards - request.max_dead_boards
            if tolerance < 0:
                return None
            return self._rectangle(w, h, max(need, 1), available, preference)
        assert request.width is not None and request.height is not None
        w, h = request.width, request.height
        if w > self.width or h > self.height:
            return None
        need = max(3 * w * h - request.max_dead_boards, 1)
        if kind is RequestKind.RECTANGLE:
            return self._rectangle(w, h, need, available, preference)
        root = request.board
        if root is None or root.z != 0 or root not in available or root not in self.functioning:
            return None
        return self._connected(root, w, h, need, available)

    # ---- single boards -------------------------------------------------------------
    def _pick_single(
        self, available: Collection[Triad], preference: Sequence[Triad] | None
    ) -> Triad | None:
        live = self.functioning
        if preference is not None:
            for triad in preference:
                if triad in available and triad in live:
                    return Triad(*triad)
        return min((t for t in available if t in live), default=None)

    def _single(self, board: Triad | None) -> Allocation | None:
        if board is None:
            return None
        board = Triad(*board)
        perimeter = [(board, d) for d in _DIRECTIONS]
        ip = self.machine.boards[board].ip
        return Allocation([board], board, 1, 1, 1, perimeter, [(Chip(0, 0), ip)])

    # ---- rectangles ----------------------------------------------------------------
    def _rectangle(
        self,
        w: int,
        h: int,
        need: int,
        available: Collection[Triad],
        preference: Sequence[Triad] | None,
    ) -> Allocation | None:
        """Find a w x h rectangle with >= need free boards connected to its root."""
        width, height = self.width, self.height
        if w > width or h > height or need > 3 * w * h:
            return None
        free = {t for t in available if t in self.functioning}
        if len(free) < need:
            return None
        # Free boards per triad, then per w x h window (wrapping on the torus): sliding
        # sums along each row, then down each column.
        counts = [[0] * width for _ in range(height)]
        for x, y, _ in free:
            counts[y][x] += 1
        across: list[list[int]] = []
        for row in counts:
            wrapped = row + row[: w - 1]
            total = sum(wrapped[:w])
            sums = [total]
            for x in range(1, width):
                total += wrapped[x + w - 1] - wrapped[x - 1]
                sums.append(total)
            across.append(sums)
        wrapped_rows = across + across[: h - 1]
        window = [sum(wrapped_rows[j][x] for j in range(h)) for x in range(width)]
        roots = []
        for gy in range(height):
            if gy:
                enter, leave = wrapped_rows[gy + h - 1], wrapped_rows[gy - 1]
                window = [t + a - b for t, a, b in zip(window, enter, leave, strict=True)]
            for gx, total in enumerate(window):
                if total >= need:
                    root = Triad(gx, gy, 0)
                    if root in free:
                        roots.append(root)
        if preference is not None and len(roots) > 1:
            rank = self._rank(preference)
            roots.sort(key=lambda t: rank.get(t, len(rank)))
        for root in roots:
            allocation = self._connected(root, w, h, need, free)
            if allocation is not None:
                return allocation
        return None

    def _rank(self, preference: Sequence[Triad]) -> dict[Triad, int]:
        """Each board's place in ``preference`` (kept while the same list is passed)."""
        if self._ranked is None or self._ranked[0] is not preference:
            self._ranked = (preference, {t: i for i, t in enumerate(preference)})
        return self._ranked[1]

    def _connected(
        self, root: Triad, w: int, h: int, need: int, free: Collection[Triad]
    ) -> Allocation | None:
        """Allocate the free boards of the rectangle at ``root`` reachable from it."""
        width, height = self.width, self.height
        rx, ry = root.x, root.y
        links = self._links
        seen = {root}
        frontier = [root]
        while frontier:
            here = frontier.pop()
            for there in links[here]:
                if (
                    there is not None
                    and there not in seen
                    and there in free
                    and (there[0] - rx) % width < w
                    and (there[1] - ry) % height < h
                ):
                    seen.add(there)
                    frontier.append(there)
        if len(seen) < need:
            return None
        return self._build(root, w, h, seen)

    def _build(self, root: Triad, w: int, h: int, boards: set[Triad]) -> Allocation:
        machine = self.machine
        ordered = job_order(boards, root, self.width, self.height)
        perimeter: list[tuple[Triad, Direction]] = []
        links = self._links
        for triad in ordered:
            for d, other in zip(_DIRECTIONS, links[triad], strict=True):
                if other is None or other not in boards:
                    perimeter.append((triad, d))
        return Allocation(
            ordered, root, w, h, 3, perimeter, connections_for(machine, ordered, root)
        )
