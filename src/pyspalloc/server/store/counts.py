"""Counts of jobs and boards for the service's metrics.

Plain functions over a :class:`~pyspalloc.server.store.Store` (as ``web_queries``), so the
metrics need no change to the store facade. Each is one grouped query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.models import BoardRow, JobRow, JobState, MachineRow


def jobs_by_state(store: StoreBase) -> dict[JobState, int]:
    """How many jobs are in each state (every state present, 0 if none)."""
    found = dict.fromkeys(JobState, 0)
    with store._read() as s:
        for state, n in s.execute(select(JobRow.state, func.count()).group_by(JobRow.state)):
            found[JobState(state)] = int(n)
    return found


@dataclass(frozen=True)
class BoardCounts:
    """A machine's boards: held by jobs, free, and out of service."""

    in_use: int = 0
    free: int = 0
    out_of_service: int = 0


def boards_by_machine(store: StoreBase) -> dict[str, BoardCounts]:
    """Board counts of every in-service machine, by name (a board out of service counts
    there even while a job still holds it)."""
    query = (
        select(
            MachineRow.name,
            BoardRow.functioning,
            func.count(),
            func.count(BoardRow.job_id),
        )
        .join(BoardRow, BoardRow.machine_id == MachineRow.id)
        .where(MachineRow.in_service)
        .group_by(MachineRow.name, BoardRow.functioning)
    )
    found: dict[str, BoardCounts] = {}
    with store._read() as s:
        names = s.scalars(select(MachineRow.name).where(MachineRow.in_service))
        tallies = {name: [0, 0, 0] for name in names}
        for name, functioning, total, held in s.execute(query):
            tally = tallies.setdefault(name, [0, 0, 0])
            if functioning:
                tally[0] += int(held)
                tally[1] += int(total) - int(held)
            else:
                tally[2] += int(total)
    for name, (in_use, free, out) in tallies.items():
        found[name] = BoardCounts(in_use, free, out)
    return found
