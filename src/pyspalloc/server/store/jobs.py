"""Jobs, their queued requests and their board allocations."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.machines import _BOARD_COLUMNS, BoardInfo, _from_row, board_info
from pyspalloc.server.store.models import (
    BoardAllocationRow,
    BoardRow,
    JobRequestRow,
    JobRow,
    JobState,
    MachineRow,
    UserRow,
)


@dataclass(frozen=True)
class JobInfo:
    """A job as read from the database."""

    id: int
    machine_id: int
    machine_name: str
    owner_id: int
    owner: str
    state: JobState
    keepalive_interval: float
    keepalive_time: float
    keepalive_host: str | None
    create_time: float
    finish_time: float | None
    reason: str | None
    original_request: str
    width: int | None
    height: int | None
    depth: int | None
    root_id: int | None
    power_target: bool
    from_queue: bool


@dataclass(frozen=True)
class RequestSpec:
    """What a job asks for (``board_id`` already resolved)."""

    num_boards: int | None = None
    width: int | None = None
    height: int | None = None
    board_id: int | None = None
    max_dead_boards: int = 0


@dataclass(frozen=True)
class QueuedRequest:
    """A waiting allocation request."""

    job_id: int
    machine_id: int
    spec: RequestSpec
    priority: float
    importance: float


def _job(row: JobRow, machine: str, owner: str) -> JobInfo:
    return JobInfo(
        row.id,
        row.machine_id,
        machine,
        row.owner_id,
        owner,
        JobState(row.state),
        row.keepalive_interval,
        row.keepalive_time,
        row.keepalive_host,
        row.create_time,
        row.finish_time,
        row.reason,
        row.original_request,
        row.width,
        row.height,
        row.depth,
        row.root_id,
        row.power_target,
        row.from_queue,
    )


_JOB_SELECT = (
    select(JobRow, MachineRow.name, UserRow.name)
    .join(MachineRow, MachineRow.id == JobRow.machine_id)
    .join(UserRow, UserRow.id == JobRow.owner_id)
)

#: the columns of :class:`JobInfo`, in order, for plain (Core) reads on hot paths
_JOB_COLUMNS = select(
    JobRow.id, JobRow.machine_id, MachineRow.name, JobRow.owner_id, UserRow.name,
    JobRow.state, JobRow.keepalive_interval, JobRow.keepalive_time, JobRow.keepalive_host,
    JobRow.create_time, JobRow.finish_time, JobRow.reason, JobRow.original_request,
    JobRow.width, JobRow.height, JobRow.depth, JobRow.root_id, JobRow.power_target,
    JobRow.from_queue,
).join(MachineRow, MachineRow.id == JobRow.machine_id).join(
    UserRow, UserRow.id == JobRow.owner_id
)  # fmt: skip

_GET_JOB = _JOB_COLUMNS.where(JobRow.id == bindparam("job_id"))

_HELD = (
    select(*_BOARD_COLUMNS)
    .where(BoardRow.job_id == bindparam("job_id"))
    .order_by(BoardRow.x, BoardRow.y, BoardRow.z)
)

_JOBS = cast(Table, JobRow.__table__)
_REQUESTS = cast(Table, JobRequestRow.__table__)
_BOARDS = cast(Table, BoardRow.__table__)
_ALLOCATIONS = cast(Table, BoardAllocationRow.__table__)
_DESTROYED = int(JobState.DESTROYED)


def _job_row(r: Any) -> JobInfo:
    (job_id, machine_id, machine, owner_id, owner, state, interval, kept, host, created,
     finished, reason, request, width, height, depth, root_id, target, queued) = r  # fmt: skip
    return JobInfo(
        job_id, machine_id, machine, owner_id, owner, JobState(state), interval, kept, host,
        created, finished, reason, request, width, height, depth, root_id, bool(target),
        bool(queued),
    )  # fmt: skip


class _Conflict(Exception):
    """Raised inside a write to roll it back (a board was taken meanwhile)."""


class JobsMixin(StoreBase):
    """Job persistence; every method is one committed transaction."""

    def create_job(
        self,
        *,
        machine_id: int,
        owner_id: int,
        group_id: int | None,
        keepalive_interval: float,
        keepalive_host: str | None,
        original_request: str,
        spec: RequestSpec,
        priority: float,
        machine_name: str | None = None,
        owner_name: str | None = None,
    ) -> JobInfo:
        """Insert a QUEUED job and its request (one transaction).

        When the caller passes ``machine_name`` and ``owner_name`` the job is described
        from what was written; otherwise it is read back.
        """
        now = time.time()
        with self._wconn() as conn:
            job_id = conn.execute(
                insert(_JOBS).values(
                    machine_id=machine_id,
                    owner_id=owner_id,
                    group_id=group_id,
                    state=int(JobState.QUEUED),
                    keepalive_interval=keepalive_interval,
                    keepalive_time=now,
                    keepalive_host=keepalive_host,
                    create_time=now,
                    original_request=original_request,
                    power_target=True,
                    from_queue=True,
                )
            ).inserted_primary_key
            assert job_id is not None
            job_id = job_id[0]
            conn.execute(
                insert(_REQUESTS).values(
                    job_id=job_id,
                    num_boards=spec.num_boards,
                    width=spec.width,
                    height=spec.height,
                    board_id=spec.board_id,
                    max_dead_boards=spec.max_dead_boards,
                    priority=priority,
                    importance=0.0,
                )
            )
        if machine_name is not None and owner_name is not None:
            return JobInfo(
                int(job_id), machine_id, machine_name, owner_id, owner_name, JobState.QUEUED,
                keepalive_interval, now, keepalive_host, now, None, None, original_request,
                None, None, None, None, True, True,
            )  # fmt: skip
        job = self.get_job(int(job_id))
        assert job is not None
        return job

    def get_job(self, job_id: int) -> JobInfo | None:
        """Return a job by id."""
        with self._rconn() as conn:
            found = conn.execute(_GET_JOB, {"job_id": job_id}).first()
            return None if found is None else _job_row(found)

    def list_jobs(
        self, *, deleted: bool, limit: int, start: int, owner_id: int | None = None
    ) -> list[int]:
        """Return job ids, newest first (only ``owner_id``'s when given)."""
        query = select(JobRow.id).order_by(JobRow.id.desc()).limit(limit).offset(start)
        if not deleted:
            query = query.where(JobRow.state != int(JobState.DESTROYED))
        if owner_id is not None:
            query = query.where(JobRow.owner_id == owner_id)
        with self._read() as s:
            return list(s.scalars(query))

    def jobs_in_states(self, *states: JobState) -> list[JobInfo]:
        """Return the jobs in any of ``states``, oldest first."""
        with self._read() as s:
            rows = s.execute(
                _JOB_SELECT.where(JobRow.state.in_([int(x) for x in states])).order_by(JobRow.id)
            )
            return [_job(*r) for r in rows]

    def keepalive(self, job_id: int, host: str | None, *, owner_id: int | None = None) -> bool:
        """Record an access to a live job (one UPDATE); return whether there was one.

        With ``owner_id`` only that user's job is touched.
        """
        j = _JOBS.c
        query = update(_JOBS).where(j.id == job_id, j.state != _DESTROYED)
        if owner_id is not None:
            query = query.where(j.owner_id == owner_id)
        with self._wconn_single() as conn:
            done = conn.execute(query.values(keepalive_time=time.time(), keepalive_host=host))
            return bool(done.rowcount)

    def expired_jobs(self, now: float) -> list[int]:
        """Return live jobs whose keepalive deadline has passed."""
        with self._read() as s:
            return list(
                s.scalars(
                    select(JobRow.id).where(
                        JobRow.state != int(JobState.DESTROYED),
                        JobRow.keepalive_time + JobRow.keepalive_interval < now,
                    )
                )
            )

    def destroy_job(self, job_id: int, reason: str, *, owner_id: int | None = None) -> bool:
        """Mark a job DESTROYED now; return False if it already was (or is unknown).

        With ``owner_id`` only that user's job is destroyed.
        """
        j = _JOBS.c
        query = update(_JOBS).where(j.id == job_id, j.state != _DESTROYED)
        if owner_id is not None:
            query = query.where(j.owner_id == owner_id)
        with self._wconn() as conn:
            done = conn.execute(
                query.values(state=_DESTROYED, finish_time=time.time(), reason=reason)
            )
            if not done.rowcount:
                return False
            conn.execute(delete(_REQUESTS).where(_REQUESTS.c.job_id == job_id))
            return True

    def destroy_job_holding(self, job_id: int, reason: str) -> list[BoardInfo] | None:
        """Mark a job DESTROYED now and return the boards it still holds (same transaction).

        Returns None (and changes nothing) if the job already was destroyed or is unknown.
        """
        with self._wconn() as conn:
            done = conn.execute(
                update(_JOBS)
                .where(_JOBS.c.id == job_id, _JOBS.c.state != _DESTROYED)
                .values(state=_DESTROYED, finish_time=time.time(), reason=reason)
            )
            if not done.rowcount:
                return None
            conn.execute(delete(_REQUESTS).where(_REQUESTS.c.job_id == job_id))
            return [_from_row(r) for r in conn.execute(_HELD, {"job_id": job_id})]

    def held_boards(self, job_id: int) -> list[BoardInfo]:
        """Return the boards a job holds now, by triad x, then y, then z."""
        with self._rconn() as conn:
            return [_from_row(r) for r in conn.execute(_HELD, {"job_id": job_id})]

    def power_plan(self, job_id: int) -> tuple[JobInfo, list[BoardInfo], BoardInfo | None] | None:
        """Return a job, the boards it holds and its root board, in one read."""
        with self._rconn() as conn:
            found = conn.execute(_GET_JOB, {"job_id": job_id}).first()
            if found is None:
                return None
            job = _job_row(found)
            held = [_from_row(r) for r in conn.execute(_HELD, {"job_id": job_id})]
            root = next((b for b in held if b.id == job.root_id), None)
            if root is None and job.root_id is not None:
                rows = conn.execute(select(*_BOARD_COLUMNS).where(BoardRow.id == job.root_id))
                root = next((_from_row(r) for r in rows), None)
        return job, held, root

    def queued_requests(self) -> list[QueuedRequest]:
        """Return waiting requests by decreasing importance, then age."""
        r = _REQUESTS.c
        with self._rconn() as conn:
            rows = conn.execute(
                select(r.job_id, _JOBS.c.machine_id, r.num_boards, r.width, r.height,
                       r.board_id, r.max_dead_boards, r.priority, r.importance)
                .join(_JOBS, _JOBS.c.id == r.job_id)
                .where(_JOBS.c.state == int(JobState.QUEUED))
                .order_by(r.importance.desc(), r.job_id)
            )  # fmt: skip
            return [
                QueuedRequest(
                    job_id,
                    machine_id,
                    RequestSpec(num, w, h, board, dead),
                    priority,
                    importance,
                )
                for job_id, machine_id, num, w, h, board, dead, priority, importance in rows
            ]

    def age_requests(self, job_ids: list[int]) -> None:
        """Add each request's priority to its importance (one allocator pass waited)."""
        if not job_ids:
            return
        with self._write() as s:
            s.execute(
                update(JobRequestRow)
                .where(JobRequestRow.job_id.in_(job_ids))
                .values(importance=JobRequestRow.importance + JobRequestRow.priority)
            )

    def allocate(
        self, job_id: int, board_ids: list[int], root_id: int, width: int, height: int, depth: int
    ) -> bool:
        """Give boards to a QUEUED job and move it to POWER.

        Returns
        -------
        bool
            False (and nothing changed) if the job is no longer queued or a board is taken.
        """
        now = time.time()
        try:
            with self._wconn() as conn:
                moved = conn.execute(
                    update(_JOBS)
                    .where(_JOBS.c.id == job_id, _JOBS.c.state == int(JobState.QUEUED))
                    .values(
                        width=width, height=height, depth=depth, root_id=root_id,
                        allocation_time=now, state=int(JobState.POWER),
                        power_target=True, from_queue=True,
                    )
                )  # fmt: skip
                if not moved.rowcount:
                    return False
                taken = conn.execute(
                    update(_BOARDS)
                    .where(_BOARDS.c.id.in_(board_ids), _BOARDS.c.job_id.is_(None))
                    .values(job_id=job_id)
                )
                if taken.rowcount != len(set(board_ids)):
                    raise _Conflict()
                conn.execute(
                    insert(_ALLOCATIONS),
                    [{"job_id": job_id, "board_id": b, "time": now} for b in board_ids],
                )
        except _Conflict:
            return False
        return True

    def start_power(self, job_id: int, on: bool) -> bool:
        """Begin a user power change of an allocated live job (state -> POWER)."""
        with self._write() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.root_id is None or row.state == int(JobState.DESTROYED):
                return False
            row.state = int(JobState.POWER)
            row.power_target, row.from_queue = on, False
            return True

    def power_done(self, job_id: int, on: bool) -> bool:
        """Record that a job's boards are now on (or off); POWER -> READY."""
        with self._wconn() as conn:
            done = conn.execute(
                update(_JOBS)
                .where(_JOBS.c.id == job_id, _JOBS.c.state == int(JobState.POWER))
                .values(state=int(JobState.READY))
            )
            if not done.rowcount:
                return False
            conn.execute(update(_BOARDS).where(_BOARDS.c.job_id == job_id).values(powered=on))
            conn.execute(delete(_REQUESTS).where(_REQUESTS.c.job_id == job_id))
            return True

    def requeue(self, job_id: int) -> bool:
        """Put a job whose power-on failed back in the queue (its boards must be freed)."""
        with self._write() as s:
            row = s.get(JobRow, job_id)
            req = s.get(JobRequestRow, job_id)
            if row is None or req is None or row.state == int(JobState.DESTROYED):
                return False
            row.state = int(JobState.QUEUED)
            row.width = row.height = row.depth = row.root_id = None
            req.importance = 0.0
            return True

    def destroyed_jobs_holding_boards(self) -> list[int]:
        """Return DESTROYED jobs whose boards have not been powered off yet."""
        with self._read() as s:
            return list(
                s.scalars(
                    select(JobRow.id)
                    .distinct()
                    .join(BoardRow, BoardRow.job_id == JobRow.id)
                    .where(JobRow.state == int(JobState.DESTROYED))
                )
            )

    def release_boards(self, job_id: int, board_ids: list[int]) -> float:
        """Record that these boards of the job are powered off, and free them.

        Returns the power-off time written.
        """
        now = time.time()
        with self._wconn() as conn:
            conn.execute(
                update(_BOARDS)
                .where(_BOARDS.c.job_id == job_id, _BOARDS.c.id.in_(board_ids))
                .values(job_id=None, powered=False, power_off_time=now)
            )
        return now

    def allocation_history(self, job_id: int) -> list[BoardInfo]:
        """Return every board ever allocated to the job."""
        with self._read() as s:
            rows = s.scalars(
                select(BoardRow)
                .join(BoardAllocationRow, BoardAllocationRow.board_id == BoardRow.id)
                .where(BoardAllocationRow.job_id == job_id)
            )
            return [board_info(r) for r in rows]
