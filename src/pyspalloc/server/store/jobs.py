"""Jobs, their queued requests and their board allocations."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, union_all, update

from pyspalloc.server.store import statements as q
from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.hot import fetch, run
from pyspalloc.server.store.machines import BoardInfo, board_from_row, board_info
from pyspalloc.server.store.models import (
    BoardAllocationRow,
    BoardRow,
    JobHistoryRow,
    JobRequestRow,
    JobRow,
    JobState,
)


class TooManyJobs(Exception):
    """The owner already has as many live jobs as allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"too many live jobs (at most {limit} per user)")
        self.limit = limit


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
class BoardGrant:
    """Boards the allocator gives a queued job: which, its root, and the shape in triads."""

    job_id: int
    board_ids: list[int]
    root_id: int
    width: int
    height: int
    depth: int


@dataclass(frozen=True)
class QueuedRequest:
    """A waiting allocation request."""

    job_id: int
    machine_id: int
    spec: RequestSpec
    priority: float
    importance: float


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
        max_live: int | None = None,
    ) -> JobInfo:
        """Insert a QUEUED job and its request (one transaction).

        When the caller passes ``machine_name`` and ``owner_name`` the job is described
        from what was written; otherwise it is read back.

        Raises
        ------
        TooManyJobs
            If ``max_live`` is given and the owner already has that many live jobs
            (counted in the same serialised transaction as the insert).
        """
        now = time.time()
        hot = self.hot
        with self._write_cursor() as cursor:
            if max_live is not None:
                live = fetch(cursor, hot.live_jobs_of, {"owner": owner_id})[0][0]
                if int(live or 0) >= max_live:
                    raise TooManyJobs(max_live)
            job_id = fetch(
                cursor,
                hot.insert_job,
                {
                    "machine_id": machine_id,
                    "owner_id": owner_id,
                    "group_id": group_id,
                    "state": int(JobState.QUEUED),
                    "keepalive_interval": keepalive_interval,
                    "keepalive_time": now,
                    "keepalive_host": keepalive_host,
                    "create_time": now,
                    "original_request": original_request,
                    "power_target": True,
                    "from_queue": True,
                },
            )[0][0]
            run(
                cursor,
                hot.insert_request,
                {
                    "job_id": job_id, "num_boards": spec.num_boards, "width": spec.width,
                    "height": spec.height, "board_id": spec.board_id,
                    "max_dead_boards": spec.max_dead_boards, "priority": priority,
                    "importance": 0.0,
                },
            )  # fmt: skip
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
        with self._cursor() as cursor:
            found = fetch(cursor, self.hot.get_job, {"jid": job_id})
        return _job_row(found[0]) if found else None

    def jobs_owned_by(self, owner_id: int, job_ids: list[int]) -> list[JobInfo]:
        """Return those of ``job_ids`` that exist and ``owner_id`` owns, in one read."""
        ids = sorted(set(job_ids))
        if not ids:
            return []
        statement, params = self.hot.owned_jobs(ids)
        with self._cursor() as cursor:
            rows = fetch(cursor, statement, {**params, "owner": owner_id})
        return [_job_row(r) for r in rows]

    def list_jobs(
        self, *, deleted: bool, limit: int, start: int, owner_id: int | None = None
    ) -> list[int]:
        """Return job ids, newest first (only ``owner_id``'s when given).

        With ``deleted`` the jobs moved to history are included.
        """
        if deleted:
            live = select(JobRow.id.label("id"))
            old = select(JobHistoryRow.id.label("id"))
            if owner_id is not None:
                live = live.where(JobRow.owner_id == owner_id)
                old = old.where(JobHistoryRow.owner_id == owner_id)
            both = union_all(live, old).subquery()
            query = select(both.c.id).order_by(both.c.id.desc()).limit(limit).offset(start)
        else:
            query = select(JobRow.id).order_by(JobRow.id.desc()).limit(limit).offset(start)
            query = query.where(JobRow.state != int(JobState.DESTROYED))
            if owner_id is not None:
                query = query.where(JobRow.owner_id == owner_id)
        with self._read() as s:
            return list(s.scalars(query))

    def jobs_in_states(self, *states: JobState) -> list[JobInfo]:
        """Return the jobs in any of ``states``, oldest first."""
        query = q.JOB_COLUMNS.where(JobRow.state.in_([int(x) for x in states])).order_by(JobRow.id)
        with self._rconn() as conn:
            return [_job_row(r) for r in conn.execute(query)]

    def keepalive(self, job_id: int, host: str | None, *, owner_id: int | None = None) -> bool:
        """Record an access to a live job (one UPDATE); return whether there was one.

        With ``owner_id`` only that user's job is touched.
        """
        if owner_id is None:
            statement, values = self.hot.keepalive, {"jid": job_id}
        else:
            statement, values = self.hot.keepalive_owned, {"jid": job_id, "oid": owner_id}
        with self._write_cursor(single=True) as cursor:
            return bool(run(cursor, statement, {**values, "now": time.time(), "host": host}))

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
        hot = self.hot
        values: dict[str, Any] = {"jid": job_id, "now": time.time(), "why": reason}
        statement = hot.destroy
        if owner_id is not None:
            statement, values["oid"] = hot.destroy_owned, owner_id
        with self._write_cursor() as cursor:
            if not run(cursor, statement, values):
                return False
            run(cursor, hot.drop_request, {"jid": job_id})
            return True

    def held_boards(self, job_id: int) -> list[BoardInfo]:
        """Return the boards a job holds now, by triad x, then y, then z."""
        with self._cursor() as cursor:
            return [board_from_row(r) for r in fetch(cursor, self.hot.held, {"jid": job_id})]

    def held_boards_of(self, job_ids: list[int]) -> dict[int, list[BoardInfo]]:
        """Return the boards each of these jobs holds now (jobs holding none are left out)."""
        ids = sorted(set(job_ids))
        held: dict[int, list[BoardInfo]] = {}
        with self._cursor() as cursor:
            statement, params = self.hot.held_by(ids)
            for r in fetch(cursor, statement, params):
                board = board_from_row(r)
                held.setdefault(int(board.job_id or 0), []).append(board)
        return held

    def power_plan(self, job_id: int) -> tuple[JobInfo, list[BoardInfo], BoardInfo | None] | None:
        """Return a job, the boards it holds and its root board, in one read."""
        hot = self.hot
        with self._cursor() as cursor:
            found = fetch(cursor, hot.get_job, {"jid": job_id})
            if not found:
                return None
            job = _job_row(found[0])
            held = [board_from_row(r) for r in fetch(cursor, hot.held, {"jid": job_id})]
            root = next((b for b in held if b.id == job.root_id), None)
            if root is None and job.root_id is not None:
                rows = fetch(cursor, hot.board, {"board_id": job.root_id})
                root = board_from_row(rows[0]) if rows else None
        return job, held, root

    def queued_requests(self) -> list[QueuedRequest]:
        """Return waiting requests by decreasing importance, then age."""
        with self._cursor() as cursor:
            rows = fetch(cursor, self.hot.queued, {})
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
        """Give boards to a QUEUED job and move it to POWER (a batch of one).

        Returns
        -------
        bool
            False (and nothing changed) if the job is no longer queued or a board is taken.
        """
        grant = BoardGrant(job_id, board_ids, root_id, width, height, depth)
        return self.allocate_many([grant]) == [job_id]

    def allocate_many(self, grants: list[BoardGrant]) -> list[int] | None:
        """Give boards to QUEUED jobs and move them to POWER, in one transaction.

        Returns
        -------
        list[int] | None
            The jobs that got their boards (a job no longer queued is skipped), or None,
            with nothing changed, if any board of any grant was taken meanwhile.
        """
        now = time.time()
        hot = self.hot
        granted: list[BoardGrant] = []
        try:
            with self._write_cursor() as cursor:
                for g in grants:
                    values = {"jid": g.job_id, "w": g.width, "h": g.height, "d": g.depth,
                              "root": g.root_id, "now": now}  # fmt: skip
                    if not run(cursor, hot.allocate, values):
                        continue
                    boards = sorted(set(g.board_ids))
                    take, taking = hot.take_boards(boards)
                    if run(cursor, take, {"jid": g.job_id, **taking}) != len(boards):
                        raise _Conflict()
                    run(cursor, hot.record_allocation, {"jid": g.job_id, "now": now})
                    granted.append(g)
        except _Conflict:
            return None
        return [g.job_id for g in granted]

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
        """Record that a job's boards are now on (or off); POWER -> READY (a batch of one)."""
        return self.finish_power([(job_id, on)], [])[0] == [job_id]

    def finish_power(
        self, done: list[tuple[int, bool]], released: list[tuple[int, list[int]]]
    ) -> tuple[list[int], float]:
        """Record finished power changes in one transaction.

        Each ``(job, on)`` of ``done`` moves the job from POWER to READY and records its
        boards on (or off) if the job still waits for that change (a later change of
        the other way, or a destroy, makes it a no-op). Each ``(job, boards)`` of
        ``released`` records those boards of the job powered off now, and frees them.

        Returns
        -------
        tuple[list[int], float]
            The jobs that became READY, and the power-off time written.
        """
        now = time.time()
        hot = self.hot
        ready: list[int] = []
        with self._write_cursor() as cursor:
            for job_id, on in done:
                if not run(cursor, hot.power_done, {"jid": job_id, "on": on}):
                    continue
                if on:
                    run(cursor, hot.set_powered, {"jid": job_id, "on": True})
                else:
                    run(cursor, hot.set_powered_off, {"jid": job_id, "now": now})
                run(cursor, hot.drop_request, {"jid": job_id})
                ready.append(job_id)
            for job_id, boards in released:
                release, releasing = hot.release_boards(boards)
                run(cursor, release, {"jid": job_id, "now": now, **releasing})
        return ready, now

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
        return self.finish_power([], [(job_id, board_ids)])[1]

    def allocation_history(self, job_id: int) -> list[BoardInfo]:
        """Return every board ever allocated to the job."""
        with self._read() as s:
            rows = s.scalars(
                select(BoardRow)
                .join(BoardAllocationRow, BoardAllocationRow.board_id == BoardRow.id)
                .where(BoardAllocationRow.job_id == job_id)
            )
            return [board_info(r) for r in rows]
