"""The lifecycle's in-memory view of one machine's boards, for the allocator.

The lifecycle is the only writer of board occupancy, so it can keep which boards are
free in memory instead of reading every board of the machine for each allocator pass:
the index is loaded from the store once, updated where the lifecycle allocates and
releases boards (after the change is committed), and reloaded when the store reports
other changes to board availability (``Store.board_generation``) or after a failure.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Collection, Iterable

from pyspalloc.geometry import Triad
from pyspalloc.server.store import BoardInfo


class BoardIndex:
    """Free boards of one machine and the order in which they rested.

    Parameters
    ----------
    boards:
        Every board of the machine, as the store has them now.
    allocatable:
        The boards the allocator can ever hand out (the definition's functioning ones);
        others are never counted as free.
    generation:
        The store's ``board_generation`` read before ``boards`` was.
    """

    def __init__(
        self, boards: Iterable[BoardInfo], allocatable: Collection[Triad], generation: int
    ) -> None:
        self.generation = generation
        #: board id by triad, and triad by board id (static while the service runs)
        self.by_triad: dict[tuple[int, int, int], int] = {}
        self.by_id: dict[int, Triad] = {}
        #: the free boards the allocator may use
        self.free: set[Triad] = set()
        self._working: set[int] = set()
        self._rested_since: dict[int, float] = {}
        self._heap: list[tuple[float, int, Triad]] = []
        #: the packing order: for which rest, valid until when, and the boards
        self._packed: tuple[float, float, list[Triad]] | None = None
        for b in boards:
            triad = Triad(b.x, b.y, b.z)
            self.by_triad[triad] = b.id
            self.by_id[b.id] = triad
            self._rested_since[b.id] = b.power_off_time
            if b.functioning and triad in allocatable:
                self._working.add(b.id)
                if b.job_id is None:
                    self.free.add(triad)
        self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        ids = self.by_triad
        since = self._rested_since
        self._heap = [(since[ids[t]], ids[t], t) for t in self.free]
        heapq.heapify(self._heap)

    def longest_rested(self) -> Triad | None:
        """Return the free board powered off longest ago (ties: lowest board id)."""
        heap = self._heap
        while heap:
            since, board_id, triad = heap[0]
            if triad in self.free and self._rested_since[board_id] == since:
                return triad
            heapq.heappop(heap)  # taken, or released again since (a newer entry exists)
        return None

    def rested(self, rest: float, now: float | None = None) -> list[Triad]:
        """Return every board in the order to prefer as a rectangle's root.

        Boards powered off at least ``rest`` seconds before ``now`` come first, by
        position, so that jobs pack together and leave room for large ones; then the
        others, longest rested first (ties: lowest board id).
        """
        since = self._rested_since
        at = time.time() if now is None else now
        cached = self._packed
        if cached is not None and cached[0] == rest and at < cached[1]:
            return cached[2]
        ready = sorted(t for i, t in self.by_id.items() if at - since[i] >= rest)
        resting = sorted((i for i in self.by_id if at - since[i] < rest),
                         key=lambda i: (since[i], i))  # fmt: skip
        until = min((since[i] + rest for i in resting), default=math.inf)
        order = ready + [self.by_id[i] for i in resting]
        self._packed = (rest, until, order)
        return order

    def last_off(self, board_ids: Iterable[int]) -> float:
        """Return when the last of these boards was powered off (0 if never)."""
        since = self._rested_since
        return max((since.get(b, 0.0) for b in board_ids), default=0.0)

    def take(self, triads: Iterable[Triad]) -> None:
        """Record that these boards were allocated."""
        self.free.difference_update(triads)

    def release(self, board_ids: Iterable[int], when: float) -> None:
        """Record that these boards were powered off at ``when`` and freed."""
        for board_id in board_ids:
            triad = self.by_id.get(board_id)
            if triad is None:
                continue
            self._rested_since[board_id] = when
            self._packed = None
            if board_id in self._working:
                self.free.add(triad)
                heapq.heappush(self._heap, (when, board_id, triad))
        if len(self._heap) > 2 * len(self.by_id) + 64:
            self._rebuild_heap()  # drop stale entries
