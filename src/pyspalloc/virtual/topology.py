"""A booted machine: the boards one boot reached, in coordinates relative to its root.

Chip (x, y) of the booted machine is ``(machine chip - root Ethernet chip) mod torus``.
The reported size follows what spinnaker tools expect of a job: 8 x 8 for one board;
otherwise per axis the whole torus (12 per triad) if the boards span it and a wrap link is
usable, else the smallest ``12w + 4`` that covers them (no wrap).
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from pyspalloc.geometry import (
    BOARD_CHIPS,
    BOARD_EDGE_LINKS,
    BOARD_LINK_CHIP_DELTAS,
    CHIP_LINK_DELTAS,
    TRIAD_CHIPS,
    Chip,
    Direction,
    Triad,
    ethernet_chip,
)
from pyspalloc.virtual.chip import ChipInfo, ChipState

if TYPE_CHECKING:
    from pyspalloc.virtual.board import VirtualBoard

__all__ = ["BootedMachine", "ROOT_LINK"]

#: parent_link reported by the root chip.
ROOT_LINK = 7
_NO_ROUTE_WORD = 0xDB6DB6  # eight 3-bit entries of 6 ("no route")


EDGES = BOARD_EDGE_LINKS


class BootedMachine:
    """The boards booted together from ``root``, with their chip-level topology.

    Parameters
    ----------
    root:
        The board the boot packets reached.
    members:
        Every board in the booted set (including ``root``).
    usable:
        ``usable(board, direction)``: whether the board-to-board link works.
    torus:
        ``(width, height)`` of the whole machine in triads.
    ready_at:
        Event-loop time from which the boards report real coordinates.
    size:
        ``(width, height)`` in chips of a recorded machine whose layout the boards
        reproduce (chip coordinates then wrap at this size, as on that hardware).
    """

    def __init__(
        self,
        root: VirtualBoard,
        members: Iterable[VirtualBoard],
        usable: Callable[[VirtualBoard, Direction], VirtualBoard | None],
        torus: tuple[int, int],
        ready_at: float = 0.0,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.root = root
        self.boards: dict[Triad, VirtualBoard] = {b.triad: b for b in members}
        self.ready_at = ready_at
        self.boot_time = int(time.time())
        tw, th = TRIAD_CHIPS * torus[0], TRIAD_CHIPS * torus[1]
        self._recorded = size
        self._torus = size or (tw, th)
        rx, ry = ethernet_chip(root.triad)
        self.eth: dict[Triad, tuple[int, int]] = {}
        for triad in self.boards:
            ex, ey = ethernet_chip(triad)
            self.eth[triad] = ((ex - rx) % tw, (ey - ry) % th)
        # Usable links between members, per board.
        self.board_links: dict[Triad, dict[Direction, VirtualBoard]] = {}
        for triad, board in self.boards.items():
            links: dict[Direction, VirtualBoard] = {}
            for direction in Direction:
                other = usable(board, direction)
                if other is not None and self.boards.get(other.triad) is other:
                    links[direction] = other
            self.board_links[triad] = links
        self.chips: dict[tuple[int, int], tuple[VirtualBoard, Chip]] = {}
        cw, ch = self._torus
        for triad, board in self.boards.items():
            ex, ey = self.eth[triad]
            for local in BOARD_CHIPS:
                if board.chip_cores(local):
                    self.chips[((ex + local.x) % cw, (ey + local.y) % ch)] = (board, local)
        self.width, self.wrap_x = self._size(0, torus[0], tw)
        self.height, self.wrap_y = self._size(1, torus[1], th)
        self.links: dict[tuple[int, int], int] = {}
        self._chip_links(tw, th)
        self.parent: dict[tuple[int, int], int] = {}
        self.p2p_table = self._routes()

    def _size(self, axis: int, triads: int, torus: int) -> tuple[int, bool]:
        if self._recorded is not None:
            return self._recorded[axis], self._recorded[axis] % TRIAD_CHIPS == 0
        if len(self.boards) == 1:
            return 8, False
        columns = {self.eth[t][axis] // TRIAD_CHIPS for t in self.boards}
        if len(columns) == triads:
            for triad, links in self.board_links.items():
                for direction, other in links.items():
                    expected = self.eth[triad][axis] + BOARD_LINK_CHIP_DELTAS[direction][axis]
                    if expected != self.eth[other.triad][axis]:
                        return torus, True
        top = max(chip[axis] for chip in self.chips)
        triads_needed = max(1, -(-(top + 1 - 4) // TRIAD_CHIPS))
        return TRIAD_CHIPS * triads_needed + 4, False

    def _chip_links(self, tw: int, th: int) -> None:
        width, height = self.width, self.height
        for (x, y), (board, local) in self.chips.items():
            bits = 0
            dead = board.dead_links(local)
            for link, (dx, dy) in enumerate(CHIP_LINK_DELTAS):
                if link in dead:
                    continue
                nx, ny = x + dx, y + dy
                if self.wrap_x:
                    nx %= width
                elif not 0 <= nx < width:
                    continue
                if self.wrap_y:
                    ny %= height
                elif not 0 <= ny < height:
                    continue
                target = self.chips.get((nx, ny))
                if target is None:
                    continue
                other, other_local = target
                if other is board:
                    if other_local != (local.x + dx, local.y + dy):
                        continue
                else:
                    edge = EDGES.get((local, link))
                    if edge is None:
                        continue
                    direction, reached = edge
                    if self.board_links[board.triad].get(direction) is not other:
                        continue
                    if reached != other_local:
                        continue
                bits |= 1 << link
            self.links[(x, y)] = bits

    def _routes(self) -> bytes:
        """Parent links (a BFS tree towards (0, 0)) and the root's P2P table."""
        words = [_NO_ROUTE_WORD] * 8192
        first_hop: dict[tuple[int, int], int] = {(0, 0): ROOT_LINK}
        self.parent[(0, 0)] = ROOT_LINK
        queue = deque([(0, 0)])
        while queue:
            x, y = queue.popleft()
            bits = self.links.get((x, y), 0)
            for link, (dx, dy) in enumerate(CHIP_LINK_DELTAS):
                if not bits & (1 << link):
                    continue
                child = ((x + dx) % self.width, (y + dy) % self.height)
                if child in self.parent:
                    continue
                self.parent[child] = (link + 3) % 6
                first_hop[child] = link if (x, y) == (0, 0) else first_hop[(x, y)]
                queue.append(child)
        for (x, y), hop in first_hop.items():
            entry = (x << 8) | y
            word, shift = entry >> 3, 3 * (entry & 7)
            words[word] = (words[word] & ~(7 << shift)) | (hop << shift)
        return struct.pack("<8192I", *words)

    # -- lookups --------------------------------------------------------------------

    def locate(self, x: int, y: int) -> tuple[VirtualBoard, Chip] | None:
        """Board and board-local chip of machine chip (x, y), if it is alive."""
        if x == 255 and y == 255:
            x = y = 0
        found = self.chips.get((x, y))
        if found is None or found[0].machine is not self:
            return None
        return found

    def chip_info(self, x: int, y: int) -> ChipInfo:
        """The :class:`ChipInfo` of machine chip (x, y) (which must exist)."""
        board, local = self.chips[(x, y)]
        ex, ey = self.eth[board.triad]
        ethernet = local == (0, 0)
        return ChipInfo(
            x=x,
            y=y,
            eth_x=ex,
            eth_y=ey,
            ip=board.ip_bytes if ethernet else bytes(4),
            links=self.links.get((x, y), 0),
            parent_link=self.parent.get((x, y), ROOT_LINK),
            width=self.width,
            height=self.height,
            root=(x, y) == (0, 0),
            boot_time=self.boot_time,
            cores=board.chip_cores(local),
        )

    def state(self, x: int, y: int, create: bool = True) -> ChipState | None:
        """The state of machine chip (x, y); None if the chip is absent.

        A chip nobody changed has no stored state; with ``create`` False a fresh
        transient one is returned instead of storing it (reads need no storage).
        """
        found = self.locate(x, y)
        if found is None:
            return None
        board, local = found
        chip = board.chips.get(local)
        if chip is None:
            if x == 255 and y == 255:
                x = y = 0
            # only stored chips are charged to the machine's memory budget
            budget = board.vm.memory_budget if create else None
            chip = ChipState(self.chip_info(x, y), self.p2p_table, budget)
            if create:
                board.chips[local] = chip
        return chip

    def neighbour(self, x: int, y: int, link: int) -> tuple[int, int] | None:
        """The chip across ``link`` of (x, y), if that link works."""
        if not self.links.get((x, y), 0) & (1 << link):
            return None
        dx, dy = CHIP_LINK_DELTAS[link]
        return (x + dx) % self.width, (y + dy) % self.height

    def coordinates(self, board: VirtualBoard, local: Chip) -> tuple[int, int]:
        """Machine coordinates of ``local`` on member ``board``."""
        ex, ey = self.eth[board.triad]
        return (ex + local.x) % self._torus[0], (ey + local.y) % self._torus[1]

    def live_states(self) -> Iterable[ChipState]:
        """Every chip state made so far on the powered member boards."""
        for board in self.boards.values():
            if board.machine is self:
                yield from board.chips.values()
