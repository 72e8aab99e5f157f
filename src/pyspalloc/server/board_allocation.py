"""Which queued jobs get which boards: the allocator pass's side of the lifecycle.

Per machine it keeps an :class:`~pyspalloc.server.allocator.Allocator` (pure
geometry) and a :class:`~pyspalloc.server.board_index.BoardIndex` (which boards are
free, and since when they rest). A pass decides, in importance order, the boards of
every queued request it can meet, and commits them all in one transaction
(:meth:`Store.allocate_many`). The lifecycle is the only writer of board occupancy, so
the indexes change only here, after commits; anything unexpected drops them and the
next pass reads the boards again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspalloc.geometry import MachineDefinition, Triad
from pyspalloc.server.allocator import (
    AllocationRequest,
    Allocator,
    RequestKind,
    classify,
    job_order,
)
from pyspalloc.server.board_index import BoardIndex
from pyspalloc.server.store import BoardGrant, QueuedRequest, Store

if TYPE_CHECKING:
    from pyspalloc.server.config import ServiceConfig

__all__ = ["BoardAllocation", "PowerOnPlan"]


@dataclass(frozen=True)
class PowerOnPlan:
    """What powering on a just-allocated job needs: its machine, its boards (root
    first, in job order) and when the last of them was powered off."""

    machine: MachineDefinition
    triads: list[Triad]
    last_off: float


class BoardAllocation:
    """The allocators and board indexes of every machine, and the allocator pass.

    Parameters
    ----------
    store:
        The database.
    machines:
        Machine definitions by name (shared with the lifecycle, which adds imports).
    config:
        The importance span.
    """

    def __init__(
        self, store: Store, machines: dict[str, MachineDefinition], config: ServiceConfig
    ) -> None:
        self.store = store
        self.machines = machines
        self.config = config
        self._allocators = {name: Allocator(m) for name, m in machines.items()}
        self._names: dict[int, str] = {}
        for name in machines:
            info = store.machine(name)
            if info is not None:
                self._names[info.id] = name
        #: per machine id: which boards are free (the pass takes them; releases, recorded
        #: by the lifecycle's worker or a failed power change, give them back: hence the lock)
        self._indexes: dict[int, BoardIndex] = {}
        self._lock = threading.Lock()
        #: seconds each machine's boards rest between power-off and power-on (by name)
        self.off_wait: dict[str, float] = {}

    def add_machine(self, machine: MachineDefinition, machine_id: int, off_wait: float) -> None:
        """Serve a machine defined while running; a machine of the same name is replaced."""
        with self._lock:
            self.machines[machine.name] = machine
            self._allocators[machine.name] = Allocator(machine)
            self._names[machine_id] = machine.name
            self.off_wait[machine.name] = off_wait
            self._indexes.pop(machine_id, None)

    def allocator(self, name: str) -> Allocator:
        """Return the allocator of the machine called ``name``."""
        return self._allocators[name]

    def machine_name(self, machine_id: int) -> str | None:
        """Return the configured machine name of a machine id."""
        return self._names.get(machine_id)

    def allocate(self, requests: list[QueuedRequest]) -> tuple[dict[int, PowerOnPlan], list[int]]:
        """Give boards to every request it can, in order, committed in one transaction.

        Returns
        -------
        tuple[dict[int, PowerOnPlan], list[int]]
            The power-on plan of each job that got its boards, and the jobs left waiting.
        """
        with self._lock:
            try:
                return self._allocate(requests)
            except Exception:
                self._indexes.clear()  # the next pass starts from what the store says
                raise

    def released(self, machine_id: int, board_ids: list[int], when: float) -> None:
        """Record that boards were freed, powered off at ``when`` (already committed)."""
        with self._lock:
            index = self._indexes.get(machine_id)
            if index is not None:
                index.release(board_ids, when)

    def _index(self, machine_id: int, name: str) -> BoardIndex:
        """Return the machine's board index, (re)loading it if the store says so."""
        index = self._indexes.get(machine_id)
        generation = self.store.board_generation
        if index is None or index.generation != generation:
            allocatable = self._allocators[name].functioning
            index = BoardIndex(self.store.boards(machine_id), allocatable, generation)
            self._indexes[machine_id] = index
        return index

    def _allocate(self, requests: list[QueuedRequest]) -> tuple[dict[int, PowerOnPlan], list[int]]:
        highest = requests[0].importance
        grants: list[BoardGrant] = []
        plans: dict[int, PowerOnPlan] = {}
        waiting: list[int] = []
        for req in requests:
            name = self._names.get(req.machine_id)
            if name is None or req.importance < highest - self.config.importance_span:
                waiting.append(req.job_id)
                continue
            index = self._index(req.machine_id, name)
            spec = req.spec
            board = None if spec.board_id is None else index.by_id.get(spec.board_id)
            request = AllocationRequest(
                num_boards=spec.num_boards,
                width=spec.width,
                height=spec.height,
                board=board,
                max_dead_boards=spec.max_dead_boards,
            )
            kind = classify(request)
            preference: list[Triad] | None = None
            if kind is RequestKind.SINGLE:
                best = index.longest_rested()
                preference = [] if best is None else [best]
            elif kind is not RequestKind.BOARD:
                preference = index.rested(self.off_wait.get(name, 0.0))
            allocation = self._allocators[name].allocate(request, index.free, preference)
            if allocation is None:
                waiting.append(req.job_id)
                continue
            ids = index.by_triad
            board_ids = [ids[t] for t in allocation.boards]
            grants.append(
                BoardGrant(
                    req.job_id,
                    board_ids,
                    ids[allocation.root],
                    allocation.width,
                    allocation.height,
                    allocation.depth,
                )
            )
            index.take(allocation.boards)  # undone by dropping the index if not committed
            machine = self.machines[name]
            triads = job_order(
                list(allocation.boards), allocation.root, machine.width, machine.height
            )
            plans[req.job_id] = PowerOnPlan(machine, triads, index.last_off(board_ids))
        granted = self._grant(grants)
        return {job_id: plans[job_id] for job_id in granted}, waiting

    def _grant(self, grants: list[BoardGrant]) -> list[int]:
        """Commit a pass's grants; on any surprise, reload the board indexes next pass."""
        if not grants:
            return []
        try:
            granted = self.store.allocate_many(grants)
        except Exception:
            self._indexes.clear()
            raise
        if granted is None or len(granted) != len(grants):
            # a job left the queue, or the index was wrong: read the boards again
            self._indexes.clear()
        return granted or []
