"""Moving jobs that ended long ago, with their board allocations, to history tables.

The live tables then hold only live and recently ended jobs. A moved job keeps its id;
what its group used is added to the group's moved usage, so quotas still count it.
The newest job is never moved, so SQLite (which may reuse the highest row id) never
gives a new job the id of a historical one. A job a board report names stays until
its board's reports are cleared.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.jobs import JobInfo
from pyspalloc.server.store.models import (
    AllocationHistoryRow,
    BoardAllocationRow,
    BoardReportRow,
    BoardRow,
    GroupRow,
    GroupUsageRow,
    JobHistoryRow,
    JobRequestRow,
    JobRow,
    JobState,
    MachineRow,
    UserRow,
)
from pyspalloc.server.store.quotas import job_usage

#: jobs moved per transaction, so a long backlog never holds the write lock for long
MOVE_BATCH = 200


@dataclass(frozen=True)
class HistoricJob:
    """A job read from the history tables."""

    id: int
    machine: str
    owner: str
    group: str | None
    create_time: float
    allocation_time: float | None
    finish_time: float | None
    reason: str | None
    original_request: str
    width: int | None
    height: int | None
    depth: int | None
    num_boards: int
    board_seconds: float
    moved: float
    boards: tuple[tuple[int, int, int], ...]


class HistoryMixin(StoreBase):
    """The history tables: move, read, purge."""

    def move_to_history(self, ended_before: float) -> int:
        """Move DESTROYED jobs that finished before ``ended_before``; return how many."""
        moved = 0
        while True:
            with self._write() as s:
                count = self._move_batch(s, ended_before)
            moved += count
            if count < MOVE_BATCH:
                return moved

    def _move_batch(self, s: Session, ended_before: float) -> int:
        newest = s.scalar(select(func.max(JobRow.id)))
        holding = select(BoardRow.job_id).where(BoardRow.job_id.is_not(None))
        reported = select(BoardReportRow.job_id).where(BoardReportRow.job_id.is_not(None))
        rows = s.execute(
            select(JobRow, MachineRow.name, UserRow.name, GroupRow.name)
            .join(MachineRow, MachineRow.id == JobRow.machine_id)
            .join(UserRow, UserRow.id == JobRow.owner_id)
            .outerjoin(GroupRow, GroupRow.id == JobRow.group_id)
            .where(
                JobRow.state == int(JobState.DESTROYED),
                JobRow.finish_time < ended_before,
                JobRow.id < (newest or 0),
                JobRow.id.not_in(holding),
                JobRow.id.not_in(reported),
            )
            .order_by(JobRow.id)
            .limit(MOVE_BATCH)
        ).all()
        if not rows:
            return 0
        ids = [job.id for job, *_ in rows]
        boards: dict[int, list[tuple[BoardAllocationRow, BoardRow]]] = {i: [] for i in ids}
        for alloc, board in s.execute(
            select(BoardAllocationRow, BoardRow)
            .join(BoardRow, BoardRow.id == BoardAllocationRow.board_id)
            .where(BoardAllocationRow.job_id.in_(ids))
        ):
            boards[alloc.job_id].append((alloc, board))
        now = time.time()
        for job, machine, owner, group in rows:
            held = boards[job.id]
            used = job_usage(len(held), job.allocation_time, job.finish_time, now)
            s.add(
                JobHistoryRow(
                    id=job.id, machine=machine, owner_id=job.owner_id, owner=owner,
                    group_id=job.group_id, group_name=group, create_time=job.create_time,
                    allocation_time=job.allocation_time, finish_time=job.finish_time,
                    reason=job.reason, original_request=job.original_request,
                    width=job.width, height=job.height, depth=job.depth,
                    num_boards=len(held), board_seconds=used, moved=now,
                )
            )  # fmt: skip
            s.flush()
            s.add_all(
                AllocationHistoryRow(
                    job_id=job.id, board_id=b.id, x=b.x, y=b.y, z=b.z, cabinet=b.cabinet,
                    frame=b.frame, board_num=b.board_num, address=b.address, time=a.time,
                )
                for a, b in held
            )  # fmt: skip
            if job.group_id is not None and used > 0:
                usage = s.get(GroupUsageRow, job.group_id)
                if usage is None:
                    s.add(GroupUsageRow(group_id=job.group_id, board_seconds=used))
                else:
                    usage.board_seconds += used
                s.flush()
        s.execute(delete(BoardAllocationRow).where(BoardAllocationRow.job_id.in_(ids)))
        s.execute(delete(JobRequestRow).where(JobRequestRow.job_id.in_(ids)))
        s.execute(delete(JobRow).where(JobRow.id.in_(ids)))
        return len(ids)

    def purge_history(self, ended_before: float) -> int:
        """Delete historical jobs that finished before ``ended_before``; return how many."""
        with self._write() as s:
            old = select(JobHistoryRow.id).where(JobHistoryRow.finish_time < ended_before)
            s.execute(delete(AllocationHistoryRow).where(AllocationHistoryRow.job_id.in_(old)))
            result = s.execute(
                delete(JobHistoryRow).where(JobHistoryRow.finish_time < ended_before)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def history(self, *, limit: int, start: int, owner_id: int | None = None) -> list[HistoricJob]:
        """Return historical jobs, newest first (only ``owner_id``'s when given)."""
        query = select(JobHistoryRow).order_by(JobHistoryRow.id.desc()).limit(limit).offset(start)
        if owner_id is not None:
            query = query.where(JobHistoryRow.owner_id == owner_id)
        with self._read() as s:
            rows = list(s.scalars(query))
            triads: dict[int, list[tuple[int, int, int]]] = {r.id: [] for r in rows}
            for a in s.scalars(
                select(AllocationHistoryRow)
                .where(AllocationHistoryRow.job_id.in_(list(triads)))
                .order_by(AllocationHistoryRow.x, AllocationHistoryRow.y, AllocationHistoryRow.z)
            ):
                triads[a.job_id].append((a.x, a.y, a.z))
        return [
            HistoricJob(
                r.id, r.machine, r.owner, r.group_name, r.create_time, r.allocation_time,
                r.finish_time, r.reason, r.original_request, r.width, r.height, r.depth,
                r.num_boards, r.board_seconds, r.moved, tuple(triads[r.id]),
            )
            for r in rows
        ]  # fmt: skip

    def count_history(self) -> int:
        """Return the number of historical jobs."""
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(JobHistoryRow)) or 0)

    def historic_job(self, job_id: int) -> JobInfo | None:
        """Return a moved job as a DESTROYED :class:`JobInfo` (machine id -1), if any."""
        with self._read() as s:
            r = s.get(JobHistoryRow, job_id)
            if r is None:
                return None
            return JobInfo(
                r.id, -1, r.machine, -1 if r.owner_id is None else r.owner_id, r.owner,
                JobState.DESTROYED, 0.0, 0.0, None, r.create_time, r.finish_time, r.reason,
                r.original_request, r.width, r.height, r.depth, None, False, False,
            )  # fmt: skip
