"""Job lifecycle: QUEUED -> POWER -> READY -> DESTROYED, allocation and keepalive expiry.

One worker thread runs the allocator pass (:mod:`~pyspalloc.server.board_allocation`;
when woken, and every ``allocator_period``) and
the keepalive expiry check (every ``expiry_period``). Power changes run on a small
thread pool through a :class:`MachineController`; the changes of one job are
serialised. The pool hands each finished change back to the worker, which records
all the changes finished since its last pass in one transaction, and makes all the
allocations of a pass in one transaction too. Woken, the worker first waits while
more work keeps arriving (at most ``batch_window``), so that a pass takes it all.
Every state change is committed before anyone is told.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pyspalloc.geometry import MachineDefinition, Triad
from pyspalloc.server.allocator import Allocator, job_order, perimeter_for
from pyspalloc.server.board_allocation import BoardAllocation, PowerOnPlan
from pyspalloc.server.controller import BoardsFailed, MachineController
from pyspalloc.server.events import EventHub
from pyspalloc.server.job_activity import JobActivity
from pyspalloc.server.power_pool import PowerPool
from pyspalloc.server.store import BoardInfo, JobInfo, JobState, RequestSpec, Store

if TYPE_CHECKING:
    from pyspalloc.server.config import ServiceConfig

__all__ = ["POWER_ERROR_REASON", "Lifecycle"]

log = logging.getLogger(__name__)
T = TypeVar("T")

POWER_ERROR_REASON = "Error changing power state!  Please contact an administrator."


@dataclass(frozen=True)
class _PowerDone:
    """A job's boards were powered on (or off) as it asked: to record as READY."""

    job_id: int
    on: bool
    machine: str


@dataclass(frozen=True)
class _PoweredOff:
    """A destroyed job's boards were powered off: to free."""

    job_id: int
    machine_id: int
    board_ids: list[int]
    machine: str


def _take_all(queue: deque[T]) -> list[T]:
    """Empty a queue other threads append to; return what it held, oldest first."""
    taken: list[T] = []
    while queue:
        taken.append(queue.popleft())
    return taken


class Lifecycle:
    """Drives jobs through their states.

    Parameters
    ----------
    store:
        The database.
    machines:
        Machine definitions by name (as synchronised into ``store``).
    controller:
        Powers boards.
    events:
        Where job and machine changes are announced.
    config:
        Periods and priority scales.
    """

    def __init__(
        self,
        store: Store,
        machines: dict[str, MachineDefinition],
        controller: MachineController,
        events: EventHub,
        config: ServiceConfig,
    ) -> None:
        self.store = store
        self.machines = machines
        self.controller = controller
        self.events = events
        self.config = config
        #: which queued jobs get which boards
        self.allocation = BoardAllocation(store, machines, config)
        self._pool = PowerPool(config.power_workers, "spalloc-power")
        self._job_locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()
        self._wake = threading.Event()
        #: whether the last pass left requests in the queue, whether a job may have
        #: been queued since it read the queue, and whether the worker should run a pass
        self._waiting = True
        self._queue_changed = True
        self._pass_wanted = True
        #: power changes finished on the pool, for the worker to record (in order)
        self._finished: deque[_PowerDone | _PoweredOff] = deque()
        #: destroyed jobs whose boards the worker is to have powered off, all together
        self._ending: deque[int] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._halted = False
        #: called with a job id when the job is destroyed or loses its boards
        self.job_end_listeners: list[Callable[[int], object]] = []
        #: told how long (s) each allocator pass took, and of each failed power change
        #: (machine name, "on"/"off"): the metrics' seams
        self.pass_listeners: list[Callable[[float], object]] = []
        self.power_failure_listeners: list[Callable[[str, str], object]] = []
        #: per job, the timer of a power-on waiting for its boards to rest (at most one
        #: per job, however often its user asks; cancelled at stop)
        self._resting: dict[int, threading.Timer] = {}
        #: jobs just allocated whose first power-on (with the allocator's plan) has not
        #: started yet; powering a job off takes it out, and the power-on is then skipped
        self._first_power_on: set[int] = set()
        #: the service's running operations on job boards; a job's boards are powered off
        #: and released only when its operations have stopped
        self.activity = JobActivity()

    # ---- control -----------------------------------------------------------------
    def start(self) -> None:
        """Resume unfinished power changes and start the worker thread."""
        for job in self.store.jobs_in_states(JobState.POWER):
            self._drive(job.id)
        self._ending.extend(self.store.destroyed_jobs_holding_boards())
        self._thread = threading.Thread(target=self._run, name="spalloc-lifecycle", daemon=True)
        self._thread.start()
        self.wake()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker and wait (bounded) for running power changes."""
        self._stop.set()
        self._wake.set()
        with self._locks_lock:
            for timer in self._resting.values():
                timer.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(timeout)
        try:
            self.record_finished()  # what finished after the worker's last pass
        except Exception:  # resumed at the next start (jobs in POWER, boards held)
            log.exception("recording the last power changes failed")

    def wake(self) -> None:
        """Ask for an allocator pass now (e.g. a job was queued)."""
        self._queue_changed = True
        self._pass_wanted = True
        self._wake.set()

    def _wake_if_waiting(self) -> None:
        """Ask for a pass if a request may be waiting (e.g. boards were just freed).

        When the last pass found every request allocated and nothing was queued since,
        freed boards cannot be used by anyone: no pass (no queue read) is needed.
        """
        if self._waiting or self._queue_changed:
            self._pass_wanted = True
            self._wake.set()

    def add_machine(self, machine: MachineDefinition, machine_id: int, off_wait: float) -> None:
        """Serve a machine defined while running (an import): its allocator, its id, and
        its boards' rest time; a machine of the same name is replaced."""
        self.allocation.add_machine(machine, machine_id, off_wait)
        self.wake()

    def allocator(self, name: str) -> Allocator:
        """Return the allocator of the machine called ``name``."""
        return self.allocation.allocator(name)

    def machine_name(self, machine_id: int) -> str | None:
        """Return the configured machine name of a machine id."""
        return self.allocation.machine_name(machine_id)

    def priority(self, spec: RequestSpec) -> float:
        """Return the priority of a request (how fast its importance grows)."""
        c = self.config
        if spec.board_id is not None:
            return c.priority_specific_board
        if spec.width is not None and spec.height is not None:
            return spec.width * spec.height * c.priority_dimensions
        return (spec.num_boards or 1) * c.priority_size

    # ---- actions -------------------------------------------------------------------
    def destroy(self, job_id: int, reason: str, *, owner_id: int | None = None) -> bool:
        """Destroy a job now; its boards are powered off and freed afterwards.

        With ``owner_id`` only that user's job is destroyed. Returns False if nothing was.
        """
        if not self.store.destroy_job(job_id, reason, owner_id=owner_id):
            return False
        self.events.notify(("job", job_id), "jobs")
        self._job_ended(job_id)
        self._ending.append(job_id)  # the worker has its boards powered off and freed
        self._wake.set()
        self._wake_if_waiting()  # a waiting request may have queued behind this job
        return True

    def _job_ended(self, job_id: int) -> None:
        self.activity.end(job_id)  # first: no operation may start or go on from here
        for listener in self.job_end_listeners:
            try:
                listener(job_id)
            except Exception:
                log.exception("job end listener failed")

    @property
    def halted(self) -> bool:
        """Whether an emergency stop has halted allocation."""
        return self._halted

    def emergency_stop(self) -> list[int]:
        """Halt allocation and destroy every live job (boards are powered off)."""
        self._halted = True
        live = self.store.jobs_in_states(JobState.QUEUED, JobState.POWER, JobState.READY)
        for job in live:
            self.destroy(job.id, "emergency stop")
        return [job.id for job in live]

    def set_power(self, job_id: int, on: bool) -> bool:
        """Start a user power change of an allocated job."""
        if not self.store.start_power(job_id, on):
            return False
        self.events.notify(("job", job_id))
        self._drive(job_id)
        return True

    # ---- worker ------------------------------------------------------------------
    def _run(self) -> None:
        next_expiry = time.monotonic() + self.config.expiry_period
        next_alloc = 0.0
        next_purge = time.monotonic() + 60.0
        while not self._stop.is_set():
            now = time.monotonic()
            wait = max(0.0, min(next_alloc, next_expiry) - now)
            if self._wake.wait(wait):
                self._gather()
            if self._stop.is_set():
                return
            self._wake.clear()
            now = time.monotonic()
            try:
                self.record_finished()
                self._power_off_ended()
                if self._pass_wanted or now >= next_alloc:
                    self._pass_wanted = False
                    self.allocate_pass()
                    for listener in self.pass_listeners:
                        listener(time.monotonic() - now)
                    next_alloc = now + self.config.allocator_period
                if now >= next_expiry:
                    self.expire_pass()
                    next_expiry = now + self.config.expiry_period
                if now >= next_purge:
                    self.store.purge_sessions(self.config.session_timeout)
                    next_purge = now + 600.0
            except Exception:  # keep the worker alive; the next pass retries
                log.exception("lifecycle pass failed")
                self._pass_wanted = True
                time.sleep(min(1.0, self.config.allocator_period))

    def _gather(self) -> None:
        """Wait, once woken, while more work keeps arriving: until none came for a fifth
        of ``batch_window``, or for the whole window."""
        window = self.config.batch_window
        deadline = time.monotonic() + window
        while window > 0:
            self._wake.clear()
            self._stop.wait(window / 5)
            if not self._wake.is_set() or time.monotonic() >= deadline or self._stop.is_set():
                return

    def _power_off_ended(self) -> None:
        """Hand the boards of every job destroyed since the last pass to one power-off."""
        ending = _take_all(self._ending)
        if ending:
            self._pool.submit(self._power_off_and_free, ending)

    def record_finished(self) -> None:
        """Record every power change finished on the pool, in one transaction.

        On failure the changes stay queued (in order) for the next pass.
        """
        finished = _take_all(self._finished)
        if not finished:
            return
        done = [(f.job_id, f.on) for f in finished if isinstance(f, _PowerDone)]
        off = [f for f in finished if isinstance(f, _PoweredOff)]
        try:
            ready, when = self.store.finish_power(done, [(f.job_id, f.board_ids) for f in off])
        except Exception:
            self._finished.extendleft(reversed(finished))
            raise
        keys: dict[Hashable, None] = {}
        ready_set = set(ready)
        for f in finished:
            if isinstance(f, _PowerDone) and f.job_id not in ready_set:
                continue
            keys[("job", f.job_id)] = keys[("machine", f.machine)] = None
        for f in off:
            self.allocation.released(f.machine_id, f.board_ids, when)
            self._forget(f.job_id)
        if keys:
            self.events.notify(*keys)
        if off:
            self._wake_if_waiting()

    def expire_pass(self) -> list[int]:
        """Destroy jobs whose keepalive expired or whose usage passed their group's quota."""
        now = time.time()
        expired = self.store.expired_jobs(now)
        for job_id in expired:
            self.destroy(job_id, "keepalive expired")
        over = self.store.over_quota_jobs(now)
        for job_id in over:
            self.destroy(job_id, "quota exceeded")
        return expired + over

    def allocate_pass(self) -> list[int]:
        """Try to allocate every queued request (with backfill); return allocated job ids."""
        self._queue_changed = False  # before the read: a job queued after it sets it again
        self._waiting = True
        requests = [] if self._halted else self.store.queued_requests()
        if not requests:
            self._waiting = False
            return []
        plans, waiting = self.allocation.allocate(requests)
        if plans:
            keys: dict[Hashable, None] = {}
            for job_id, plan in plans.items():
                keys[("job", job_id)] = keys[("machine", plan.machine.name)] = None
            self.events.notify(*keys)
            with self._locks_lock:
                self._first_power_on.update(plans)
            for job_id, plan in plans.items():
                self._drive(job_id, plan)
        self.store.age_requests(waiting)
        self._waiting = len(plans) < len(requests)
        return list(plans)

    # ---- power changes (thread pool) ---------------------------------------------
    def _drive(self, job_id: int, plan: PowerOnPlan | None = None) -> None:
        """Have a job's power change made on the pool (refused when stopping: resumed at
        the next start)."""
        self._pool.submit(self._drive_power, job_id, plan)

    def _forget(self, job_id: int) -> None:
        """Drop what is kept of a destroyed job whose boards are free again: its activity
        record and its lock (a late taker of a new lock finds the job destroyed)."""
        self.activity.forget(job_id)
        with self._locks_lock:
            self._job_locks.pop(job_id, None)

    def _job_lock(self, job_id: int) -> threading.Lock:
        with self._locks_lock:
            return self._job_locks[job_id]

    def _machine_of(self, job: JobInfo) -> MachineDefinition | None:
        name = self.allocation.machine_name(job.machine_id)
        return None if name is None else self.machines[name]

    def _drive_power(self, job_id: int, plan: PowerOnPlan | None = None) -> None:
        """Power a job's boards as it asks; ``plan``: the allocator's, for a new job."""
        with self._job_lock(job_id):
            if plan is not None:
                with self._locks_lock:
                    if job_id not in self._first_power_on:
                        return  # destroyed, and its boards powered off, before this began
                    self._first_power_on.discard(job_id)
                if self._rested(job_id, plan.machine.name, plan.last_off):
                    self._switch(job_id, plan.machine, plan.triads, True)
                return
            found = self.store.power_plan(job_id)  # job, held boards and root: one read
            if found is None:
                return
            job, held, root = found
            machine = self._machine_of(job)
            if job.state != JobState.POWER or machine is None:
                return
            last_off = max((b.power_off_time for b in held if not b.powered), default=0.0)
            if job.power_target and not self._rested(job_id, machine.name, last_off):
                return
            triads = [Triad(b.x, b.y, b.z) for b in held]
            if root is not None:  # the controller boots boards[0]: the root comes first
                triads = job_order(triads, Triad(*root.triad), machine.width, machine.height)
            self._switch(job_id, machine, triads, job.power_target)

    def _switch(
        self, job_id: int, machine: MachineDefinition, triads: list[Triad], on: bool
    ) -> None:
        """Power a job's boards on (with its links) or off; hand the result to the worker."""
        try:
            if on:
                self.controller.power_on_job(machine, triads, perimeter_for(machine, triads))
            else:
                self.controller.power_off(machine, triads)
        except Exception as error:
            self._power_change_error(job_id, machine, triads, on, error)
            return
        self._finished.append(_PowerDone(job_id, on, machine.name))
        self._wake.set()

    def _power_change_error(
        self,
        job_id: int,
        machine: MachineDefinition,
        triads: list[Triad],
        on: bool,
        error: Exception,
    ) -> None:
        """A power change failed: boards out of service, then the job re-queued or ended."""
        log.warning("power change of job %d failed: %s", job_id, error)
        self._power_change_failed(machine.name, on)
        job = self.store.get_job(job_id)
        if job is None:
            return
        held = self.store.held_boards(job_id)
        if isinstance(error, BoardsFailed):
            self._out_of_service(job_id, machine.name, held, error)
        self._power_failed(job, machine, [b.id for b in held], triads)

    def _rested(self, job_id: int, name: str, last_off: float) -> bool:
        """Whether a job's boards, last powered off at ``last_off``, rested ``off_wait``.

        If not, a timer submits the power change again once they have.
        """
        rest = self.allocation.off_wait.get(name, 0.0)
        left = min(rest, last_off + rest - time.time())
        if left <= 0 or self._stop.is_set():
            return True

        def resume() -> None:
            with self._locks_lock:
                self._resting.pop(job_id, None)
            self._drive(job_id)

        with self._locks_lock:
            if job_id in self._resting:  # already waiting: that timer drives it
                return False
            timer = threading.Timer(left, resume)
            timer.daemon = True
            self._resting[job_id] = timer
        log.info("job %d: boards rest %.1f s more before power-on", job_id, left)
        timer.start()
        return False

    def _out_of_service(
        self, job_id: int, name: str, held: list[BoardInfo], error: BoardsFailed
    ) -> None:
        """Take the boards that failed for good out of service, recording why."""
        failed = {tuple(t) for t in error.boards}
        ids = [b.id for b in held if b.triad in failed]
        self.store.take_out_of_service(ids, job_id, error.reason)
        log.error("boards %s of %s taken out of service: %s", sorted(failed), name, error)
        self.events.notify(("machine", name))

    def _power_change_failed(self, name: str, on: bool) -> None:
        for listener in self.power_failure_listeners:
            try:
                listener(name, "on" if on else "off")
            except Exception:
                log.exception("power failure listener failed")

    def _power_failed(
        self, job: JobInfo, machine: MachineDefinition, board_ids: list[int], triads: list[Triad]
    ) -> None:
        if not job.from_queue:
            self.destroy(job.id, POWER_ERROR_REASON)
            return
        self._job_ended(job.id)
        try:
            self._quiesce(job.id)
            try:
                self.controller.power_off(machine, triads)
            except Exception as error:
                log.warning("power off after failure of job %d failed: %s", job.id, error)
                self._power_change_failed(machine.name, False)
            when = self.store.release_boards(job.id, board_ids)
            self.allocation.released(job.machine_id, board_ids, when)
            self.store.requeue(job.id)
        finally:
            self.activity.forget(job.id)
        self._queue_changed = True
        self.events.notify(("job", job.id), ("machine", machine.name))
        # no wake-up: the next periodic pass retries, so a failing BMP is not hammered

    def _quiesce(self, job_id: int) -> None:
        """Wait (bounded) until no service operation of the job can touch its boards."""
        timeout = self.config.operation_drain_timeout
        if not self.activity.wait_idle(job_id, timeout):
            log.error(
                "job %d: %d board operations still running %.0f s after its end; "
                "releasing its boards anyway",
                job_id,
                self.activity.count(job_id),
                timeout,
            )

    def _power_off_and_free(self, job_ids: list[int]) -> None:
        """Power off and free the boards of destroyed jobs: one controller call per machine
        (one BMP command per frame), then the worker frees them and forgets the jobs'
        activity."""
        handed_on: set[int] = set()
        try:
            with ExitStack() as locks:
                for job_id in sorted(set(job_ids)):
                    locks.enter_context(self._job_lock(job_id))
                with self._locks_lock:  # a first power-on not begun must not follow this
                    self._first_power_on.difference_update(job_ids)
                # read under the jobs' locks: a failed power-on may have freed them already
                held = self.store.held_boards_of(job_ids)
                jobs_on: defaultdict[tuple[int, str], list[int]] = defaultdict(list)
                for job_id, boards in held.items():
                    machine_id = boards[0].machine_id
                    name = self.allocation.machine_name(machine_id)
                    if name is not None:
                        self._quiesce(job_id)
                        jobs_on[machine_id, name].append(job_id)
                for (machine_id, name), jobs in jobs_on.items():
                    triads = [Triad(b.x, b.y, b.z) for j in jobs for b in held[j]]
                    try:
                        self.controller.power_off(self.machines[name], triads)
                    except Exception as error:
                        # the boards are freed anyway: a later power-on resets them
                        log.warning("power off of jobs %s failed: %s", jobs, error)
                        self._power_change_failed(name, False)
                        if isinstance(error, BoardsFailed):
                            for job_id in jobs:
                                self._out_of_service(job_id, name, held[job_id], error)
                    for job_id in jobs:
                        board_ids = [b.id for b in held[job_id]]
                        self._finished.append(_PoweredOff(job_id, machine_id, board_ids, name))
                        handed_on.add(job_id)
                if handed_on:
                    self._wake.set()
        finally:
            for job_id in set(job_ids) - handed_on:
                self._forget(job_id)
