"""Power changes of jobs' boards, made on the power threads for the lifecycle.

A job's changes are serialised by a lock of its own. A new job is powered on with the
allocator's plan (no store read); any other change reads the job and its boards first.
Boards rest ``off_wait`` after a power-off before they power on again (a timer
resumes the change). A failed change takes the boards that failed for good out of
service, then ends the job or queues it again. Destroyed jobs are powered off
together, one controller call per machine. Each finished change is handed back
(:meth:`PowerChanges.take_finished`) for the lifecycle worker to record: nothing here
writes a job's state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pyspalloc.geometry import MachineDefinition, Triad
from pyspalloc.server.allocator import job_order, perimeter_for
from pyspalloc.server.board_allocation import BoardAllocation, PowerOnPlan
from pyspalloc.server.controller import BoardsFailed, MachineController
from pyspalloc.server.events import EventHub
from pyspalloc.server.job_activity import JobActivity
from pyspalloc.server.power_pool import PowerPool
from pyspalloc.server.store import BoardInfo, JobInfo, JobState, Store

if TYPE_CHECKING:
    from pyspalloc.server.config import ServiceConfig

__all__ = ["POWER_ERROR_REASON", "PowerChanges", "PowerDone", "PoweredOff"]

log = logging.getLogger(__name__)
T = TypeVar("T")

POWER_ERROR_REASON = "Error changing power state!  Please contact an administrator."


@dataclass(frozen=True)
class PowerDone:
    """A job's boards were powered on (or off) as it asked: to record as READY."""

    job_id: int
    on: bool
    machine: str


@dataclass(frozen=True)
class PoweredOff:
    """A destroyed job's boards were powered off: to free."""

    job_id: int
    machine_id: int
    board_ids: list[int]
    machine: str


#: a power change finished on the pool, for the lifecycle worker to record
Finished = PowerDone | PoweredOff


@dataclass(frozen=True)
class LifecycleHooks:
    """What a power change may ask of the lifecycle."""

    #: destroy a job, with a reason
    destroy: Callable[[int, str], object]
    #: a job lost its boards: stop its operations (before they are powered off)
    job_ended: Callable[[int], object]
    #: a job went back to the queue
    requeued: Callable[[], object]
    #: a change finished: the worker has something to record
    finished: Callable[[], object]


def _take_all(queue: deque[T]) -> list[T]:
    """Empty a queue other threads append to; return what it held, oldest first."""
    taken: list[T] = []
    while queue:
        taken.append(queue.popleft())
    return taken


class PowerChanges:
    """The power changes of every job, on ``config.power_workers`` threads."""

    def __init__(
        self,
        store: Store,
        machines: dict[str, MachineDefinition],
        controller: MachineController,
        events: EventHub,
        config: ServiceConfig,
        allocation: BoardAllocation,
        activity: JobActivity,
        hooks: LifecycleHooks,
    ) -> None:
        self.store = store
        self.machines = machines
        self.controller = controller
        self.events = events
        self.config = config
        self.allocation = allocation
        self.activity = activity
        self.hooks = hooks
        #: told of each failed power change (machine name, "on"/"off"): a metrics seam
        self.failure_listeners: list[Callable[[str, str], object]] = []
        self._pool = PowerPool(config.power_workers, "spalloc-power")
        self._job_locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()
        self._stopping = threading.Event()
        #: finished changes, for the worker to record (in order)
        self._finished: deque[Finished] = deque()
        #: destroyed jobs whose boards are to be powered off, all together
        self._ending: deque[int] = deque()
        #: per job, the timer of a power-on waiting for its boards to rest (at most one
        #: per job, however often its user asks; cancelled at stop)
        self._resting: dict[int, threading.Timer] = {}
        #: jobs just allocated whose first power-on (with the allocator's plan) has not
        #: started yet; powering a job off takes it out, and the power-on is then skipped
        self._first_power_on: set[int] = set()

    # ---- what the lifecycle asks -------------------------------------------------
    def drive(self, job_id: int) -> None:
        """Make the power change a job in POWER asks for (refused when stopping: resumed
        at the next start)."""
        self._pool.submit(self._drive_power, job_id, None)

    def power_on_new(self, plans: dict[int, PowerOnPlan]) -> None:
        """Power on jobs just allocated, each with its allocator's plan."""
        with self._locks_lock:
            self._first_power_on.update(plans)
        for job_id, plan in plans.items():
            self._pool.submit(self._drive_power, job_id, plan)

    def ended(self, job_ids: Iterable[int]) -> None:
        """Note destroyed jobs whose boards are to be powered off and freed (by the next
        :meth:`power_off_ended`)."""
        self._ending.extend(job_ids)

    def power_off_ended(self) -> None:
        """Power off and free the boards of every job noted since the last call, all
        together."""
        ending = _take_all(self._ending)
        if ending:
            self._pool.submit(self._power_off_and_free, ending)

    def take_finished(self) -> list[Finished]:
        """The changes finished since the last call, oldest first."""
        return _take_all(self._finished)

    def put_back(self, finished: list[Finished]) -> None:
        """Return changes :meth:`take_finished` gave, when recording them failed."""
        self._finished.extendleft(reversed(finished))

    def forget(self, job_id: int) -> None:
        """Drop what is kept of a destroyed job whose boards are free again: its activity
        record and its lock (a late taker of a new lock finds the job destroyed)."""
        self.activity.forget(job_id)
        with self._locks_lock:
            self._job_locks.pop(job_id, None)

    def stop_resting(self) -> None:
        """Cancel the power-ons waiting for boards to rest; later ones do not wait (the
        service is stopping)."""
        self._stopping.set()
        with self._locks_lock:
            for timer in self._resting.values():
                timer.cancel()

    def shutdown(self, timeout: float) -> None:
        """Take no more changes; wait (bounded) for the running ones."""
        self._pool.shutdown(timeout)

    # ---- on the power threads -------------------------------------------------------
    def _job_lock(self, job_id: int) -> threading.Lock:
        with self._locks_lock:
            return self._job_locks[job_id]

    def _machine_of(self, job: JobInfo) -> MachineDefinition | None:
        name = self.allocation.machine_name(job.machine_id)
        return None if name is None else self.machines[name]

    def _drive_power(self, job_id: int, plan: PowerOnPlan | None) -> None:
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
        """Power a job's boards on (with its links) or off; hand the result back."""
        try:
            if on:
                self.controller.power_on_job(machine, triads, perimeter_for(machine, triads))
            else:
                self.controller.power_off(machine, triads)
        except Exception as error:
            self._power_change_error(job_id, machine, triads, on, error)
            return
        self._hand_back([PowerDone(job_id, on, machine.name)])

    def _hand_back(self, finished: Iterable[Finished]) -> None:
        self._finished.extend(finished)
        self.hooks.finished()

    def _rested(self, job_id: int, name: str, last_off: float) -> bool:
        """Whether a job's boards, last powered off at ``last_off``, rested ``off_wait``.

        If not, a timer submits the power change again once they have.
        """
        rest = self.allocation.off_wait.get(name, 0.0)
        left = min(rest, last_off + rest - time.time())
        if left <= 0 or self._stopping.is_set():
            return True

        def resume() -> None:
            with self._locks_lock:
                self._resting.pop(job_id, None)
            self.drive(job_id)

        with self._locks_lock:
            if job_id in self._resting:  # already waiting: that timer drives it
                return False
            timer = threading.Timer(left, resume)
            timer.daemon = True
            self._resting[job_id] = timer
        log.info("job %d: boards rest %.1f s more before power-on", job_id, left)
        timer.start()
        return False

    # ---- failures --------------------------------------------------------------------
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
        self._failed(machine.name, on)
        job = self.store.get_job(job_id)
        if job is None:
            return
        held = self.store.held_boards(job_id)
        if isinstance(error, BoardsFailed):
            self._out_of_service(job_id, machine.name, held, error)
        self._requeue_or_end(job, machine, [b.id for b in held], triads)

    def _out_of_service(
        self, job_id: int, name: str, held: list[BoardInfo], error: BoardsFailed
    ) -> None:
        """Take the boards that failed for good out of service, recording why."""
        failed = {tuple(t) for t in error.boards}
        ids = [b.id for b in held if b.triad in failed]
        self.store.take_out_of_service(ids, job_id, error.reason)
        log.error("boards %s of %s taken out of service: %s", sorted(failed), name, error)
        self.events.notify(("machine", name))

    def _failed(self, name: str, on: bool) -> None:
        for listener in self.failure_listeners:
            try:
                listener(name, "on" if on else "off")
            except Exception:
                log.exception("power failure listener failed")

    def _requeue_or_end(
        self, job: JobInfo, machine: MachineDefinition, board_ids: list[int], triads: list[Triad]
    ) -> None:
        """End a job whose boards failed to power, or queue it again if it came from
        the queue (its boards powered off and freed first)."""
        if not job.from_queue:
            self.hooks.destroy(job.id, POWER_ERROR_REASON)
            return
        self.hooks.job_ended(job.id)
        try:
            self._quiesce(job.id)
            try:
                self.controller.power_off(machine, triads)
            except Exception as error:
                log.warning("power off after failure of job %d failed: %s", job.id, error)
                self._failed(machine.name, False)
            when = self.store.release_boards(job.id, board_ids)
            self.allocation.released(job.machine_id, board_ids, when)
            self.store.requeue(job.id)
        finally:
            self.activity.forget(job.id)
        self.hooks.requeued()
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

    # ---- destroyed jobs --------------------------------------------------------------
    def _power_off_and_free(self, job_ids: list[int]) -> None:
        """Power off the boards of destroyed jobs, one controller call per machine (one
        BMP command per frame), and hand them back to be freed."""
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
                        self._failed(name, False)
                        if isinstance(error, BoardsFailed):
                            for job_id in jobs:
                                self._out_of_service(job_id, name, held[job_id], error)
                    self._hand_back(
                        PoweredOff(j, machine_id, [b.id for b in held[j]], name) for j in jobs
                    )
                    handed_on.update(jobs)
        finally:
            for job_id in set(job_ids) - handed_on:
                self.forget(job_id)
