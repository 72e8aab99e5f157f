"""Job commands of the v1 protocol, on the same store and lifecycle as the REST API.

Every method runs on a worker thread and returns what goes in ``{"return": ...}``.
v1 jobs belong to the configured user; a v1 client may act on those jobs only (others
read as unknown), as the old protocol has no authentication.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from pyspalloc.geometry import allocation_chip_size
from pyspalloc.server.api.common import ApiError
from pyspalloc.server.api.jobs import select_machine
from pyspalloc.server.api.jobview import connections, machine_of
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import JobInfo, JobState, UserInfo
from pyspalloc.server.v1.codec import V1Error
from pyspalloc.server.v1.create import V1Create

#: the owner shown for jobs that are not the v1 user's (as the Java compat layer)
HIDDEN = "<Hidden>"

#: a keepalive refresh is written only if the recorded one is older than this (s)
#: (or came from another host): polling a job's state does not rewrite it each time
KEEPALIVE_RESOLUTION = 1.0

#: how long the v1 user's group and its quota are remembered (s)
GROUP_TTL = 1.0

#: live v1 jobs remembered as last read, and jobs announced as changed, at most
MAX_REMEMBERED = 4096

#: jobs read together when one announced as changed is polled, at most
READ_AHEAD = 256


def wire_request(job: JobInfo) -> dict[str, Any]:
    """The v1 part of a job's stored request (``owner``, ``args``, ``kwargs``), if any."""
    try:
        stored = json.loads(job.original_request)
    except ValueError:
        return {}
    found = stored.get("v1") if isinstance(stored, dict) else None
    return found if isinstance(found, dict) else {}


class V1Jobs:
    """The job commands, for the v1 user ``user`` in group ``group``."""

    def __init__(self, ctx: ServiceContext, user: UserInfo, group: str | None) -> None:
        self.ctx = ctx
        self.user = user
        self.group = group
        self._group: tuple[float, int | None, float | None] | None = None
        #: the v1 user's live jobs as last read from the store; a job is forgotten when
        #: the service announces a change of it (:meth:`changed`), so that polling a job
        #: reads the store only after it changed
        self._remembered: dict[int, JobInfo] = {}
        #: jobs announced as changed and not read since (oldest first), each with the
        #: jobs announced with it: the first poll of one reads those of them still
        #: unread in the same go, as the service changes jobs in batches (a power-on
        #: pass) and clients poll every job they made
        self._stale: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        #: how many jobs were dropped from ``_stale`` to keep it bounded
        self._dropped = 0
        self._lock = threading.Lock()

    def changed(self, keys: tuple[Hashable, ...]) -> None:
        """Forget the jobs named in a change announcement (an event hub listener)."""
        together = tuple(
            key[1] for key in keys if isinstance(key, tuple) and len(key) == 2 and key[0] == "job"
        )
        if not together:
            return
        with self._lock:
            for job_id in together:
                self._remembered.pop(job_id, None)
                self._stale[job_id] = together
                self._stale.move_to_end(job_id)
            while len(self._stale) > MAX_REMEMBERED:
                self._stale.popitem(last=False)
                self._dropped += 1

    # ---- helpers -----------------------------------------------------------------
    def _own(self, job_id: int) -> JobInfo | None:
        """The v1 user's job ``job_id`` (None if it is unknown or another user's)."""
        job = self._remembered.get(job_id)
        if job is not None:
            return job
        with self._lock:
            together = self._stale.pop(job_id, ())
            batch = [job_id]
            for other in together:
                if len(batch) >= READ_AHEAD:
                    break
                if self._stale.get(other) is together:  # not read nor changed since
                    del self._stale[other]
                    batch.append(other)
            dropped = self._dropped
        jobs = self.ctx.store.jobs_owned_by(self.user.id, batch)
        self._remember(jobs, dropped)
        return next((j for j in jobs if j.id == job_id), None)

    def _remember(self, jobs: list[JobInfo], dropped: int) -> None:
        """Remember the live ones of ``jobs``, read when ``_dropped`` was ``dropped``.

        A job announced as changed since it was read is stale again, and is not
        remembered; nor is any job if announcements were dropped meanwhile. A job
        remembered meanwhile by another thread's read is kept: that read began later.
        """
        with self._lock:
            if self._dropped != dropped:
                return
            if len(self._remembered) + len(jobs) > MAX_REMEMBERED:
                self._remembered.clear()
            for job in jobs:
                if job.state != JobState.DESTROYED and job.id not in self._stale:
                    self._remembered.setdefault(job.id, job)

    def _replace(self, job: JobInfo, updated: JobInfo) -> None:
        """Remember ``updated`` instead of ``job``, if ``job`` is still remembered."""
        with self._lock:
            if self._remembered.get(job.id) is job:
                self._remembered[job.id] = updated

    def _touch(self, job_id: int, host: str) -> bool:
        """Refresh a v1 job's keepalive; False if it is not a live job of the v1 user."""
        return self.ctx.store.keepalive(job_id, host, owner_id=self.user.id)

    def _touched(self, job_id: int, host: str) -> JobInfo | None:
        """Read a v1 job, refreshing its keepalive first unless that was just done."""
        job = self._own(job_id)
        if job is None or job.state == JobState.DESTROYED:
            return job
        now = time.time()
        if now - job.keepalive_time < KEEPALIVE_RESOLUTION and job.keepalive_host == host:
            return job
        if self._touch(job_id, host):
            kept = dataclasses.replace(job, keepalive_time=now, keepalive_host=host)
            self._replace(job, kept)
            return kept
        return self._own(job_id)  # destroyed meanwhile

    def _group_and_quota(self) -> tuple[int | None, float | None]:
        """The group v1 jobs are accounted to and its quota (read at most every second)."""
        now = time.monotonic()
        cached = self._group
        if cached is None or now - cached[0] > GROUP_TTL:
            try:
                group_id, quota = self.ctx.store.group_for(self.user.id, self.group)
            except LookupError:
                raise V1Error(f"group {self.group} does not exist or has no v1 user") from None
            cached = self._group = (now, group_id, quota)
        return cached[1], cached[2]

    # ---- commands ----------------------------------------------------------------
    def create_job(self, call: V1Create, host: str) -> int:
        """Queue a job for the v1 user; return its id."""
        ctx = self.ctx
        if ctx.lifecycle.halted:
            raise V1Error("The Server has been stopped due to an emergency.")
        group_id, quota = self._group_and_quota()
        if (
            group_id is not None
            and quota is not None
            and ctx.store.group_usage(group_id, time.time()) >= quota
        ):
            raise V1Error(f"quota exceeded in group {group_id}")
        request = call.request
        if call.any_dead:  # dead boards, not busy ones: at most as many as there are
            dead = max((len(m.dead_boards) for m in ctx.machines.values()), default=0)
            request = dataclasses.replace(
                request, max_dead_boards=min(request.max_dead_boards, dead)
            )
        try:
            info, spec = select_machine(ctx, request)
        except ApiError as error:
            raise V1Error(error.message) from None
        original = request.original(self.user.name)
        original["v1"] = {"owner": call.owner, "args": call.args, "kwargs": call.kwargs}
        job = ctx.store.create_job(
            machine_id=info.id,
            owner_id=self.user.id,
            group_id=group_id,
            keepalive_interval=request.keepalive,
            keepalive_host=host,
            original_request=json.dumps(original),
            spec=spec,
            priority=ctx.lifecycle.priority(spec),
            machine_name=info.name,
            owner_name=self.user.name,
        )
        ctx.events.notify("jobs", ("job", job.id))
        ctx.lifecycle.wake()
        return job.id

    def job_keepalive(self, job_id: int, host: str) -> None:
        """Refresh a job's keepalive."""
        self._touch(job_id, host)

    def get_job_state(self, job_id: int, host: str) -> dict[str, Any]:
        """State, power, keepalive interval, reason, start time and keepalive host."""
        job = self._touched(job_id, host)
        if job is None:
            return {"state": int(JobState.UNKNOWN), "power": None, "keepalive": None,
                    "reason": None, "start_time": None, "keepalivehost": None}  # fmt: skip
        if job.state == JobState.DESTROYED:
            return {"state": int(job.state), "power": None, "keepalive": None,
                    "reason": job.reason, "start_time": None, "keepalivehost": None}  # fmt: skip
        return {
            "state": int(job.state),
            "power": None if job.root_id is None else job.power_target,
            "keepalive": job.keepalive_interval,
            "reason": None,
            "start_time": job.create_time,
            "keepalivehost": job.keepalive_host,
        }

    def get_job_machine_info(self, job_id: int, host: str) -> dict[str, Any]:
        """Size in chips, connections, machine and boards (all null before allocation)."""
        job = self._touched(job_id, host)
        found = None if job is None else connections(self.ctx, job)
        if job is None or found is None or job.width is None or job.height is None:
            return {"width": None, "height": None, "connections": None,
                    "machine_name": None, "boards": None}  # fmt: skip
        machine, _, conns = found
        size = allocation_chip_size(
            job.width, job.height, job.depth or 3, machine.width, machine.height
        )
        return {
            "width": size.x,
            "height": size.y,
            "connections": [[[c.x, c.y], ip] for c, ip, _ in conns],
            "machine_name": machine.name,
            "boards": [list(b.triad) for _, _, b in conns],
        }

    def set_power(self, job_id: int, on: bool, host: str) -> None:
        """Power a job's boards on (a reset if they are on) or off."""
        job = self._touched(job_id, host)
        if job is not None and job.root_id is not None and job.state != JobState.DESTROYED:
            self.ctx.lifecycle.set_power(job_id, on)

    def destroy_job(self, job_id: int, reason: str | None) -> None:
        """Destroy a v1 job (nothing happens for other or unknown jobs)."""
        self.ctx.lifecycle.destroy(job_id, reason or "", owner_id=self.user.id)

    def list_jobs(self) -> list[dict[str, Any]]:
        """Every live job, oldest first; owners of other users' jobs are hidden."""
        store = self.ctx.store
        out = []
        for job in store.jobs_in_states(JobState.QUEUED, JobState.POWER, JobState.READY):
            mine = job.owner_id == self.user.id
            wire = wire_request(job) if mine else {}
            allocated = job.root_id is not None
            boards = [list(b.triad) for b in store.held_boards(job.id)] if allocated else None
            machine = machine_of(self.ctx, job) if allocated else None
            out.append(
                {
                    "job_id": job.id,
                    "owner": wire.get("owner", job.owner) if mine else HIDDEN,
                    "start_time": job.create_time,
                    "keepalive": job.keepalive_interval,
                    "state": int(job.state),
                    "power": job.power_target if allocated else None,
                    "args": wire.get("args", []),
                    "kwargs": wire.get("kwargs", {}),
                    "allocated_machine_name": None if machine is None else machine.name,
                    "boards": boards,
                    "keepalivehost": (job.keepalive_host or "") if mine else "",
                }
            )
        return out

    def report_problem(
        self, address: str, x: int | None, y: int | None, p: int | None, description: str
    ) -> None:
        """Report a problem with a board (by IP) of one of the v1 user's live jobs."""
        ctx = self.ctx
        for info in ctx.store.machines():
            definition = ctx.machines.get(info.name)
            found = None if definition is None else definition.board_at_ip(address)
            if found is None:
                continue
            board = ctx.store.board_at(info.id, *found.triad)
            job = None if board is None or board.job_id is None else self._own(board.job_id)
            if board is None or job is None or job.state == JobState.DESTROYED:
                break
            where = "" if x is None or y is None else f" chip ({x}, {y})"
            where += "" if p is None or not where else f" core {p}"
            ctx.store.report_board(
                board.id,
                job.id,
                self.user.id,
                f"{description}{where}",
                ctx.config.report_action_threshold,
            )
            ctx.events.notify(("machine", info.name))
            return
        raise V1Error(f"no job of this service holds a board at {address}")
