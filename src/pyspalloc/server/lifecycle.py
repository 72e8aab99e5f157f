"""Job lifecycle: QUEUED -> POWER -> READY -> DESTROYED, allocation and keepalive expiry.

One worker thread runs the allocator pass (:mod:`~pyspalloc.server.board_allocation`;
when woken, and every ``allocator_period``) and
the keepalive expiry check (every ``expiry_period``). Power changes run on the power
threads (:mod:`~pyspalloc.server.power_changes`), which hand each finished change
back to the worker; it records all the changes finished since its last pass in one
transaction, and makes all the allocations of a pass in one transaction too. Woken,
the worker first waits while more work keeps arriving (at most ``batch_window``), so
that a pass takes it all.
Every state change is committed before anyone is told.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from pyspalloc.geometry import MachineDefinition
from pyspalloc.server.allocator import Allocator
from pyspalloc.server.board_allocation import BoardAllocation
from pyspalloc.server.controller import MachineController
from pyspalloc.server.events import EventHub
from pyspalloc.server.job_activity import JobActivity
from pyspalloc.server.power_changes import (
    POWER_ERROR_REASON,
    LifecycleHooks,
    PowerChanges,
    PowerDone,
    PoweredOff,
)
from pyspalloc.server.store import JobState, RequestSpec, Store

if TYPE_CHECKING:
    from pyspalloc.server.config import ServiceConfig

__all__ = ["POWER_ERROR_REASON", "Lifecycle"]

log = logging.getLogger(__name__)


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
        self._wake = threading.Event()
        #: whether the last pass left requests in the queue, whether a job may have
        #: been queued since it read the queue, and whether the worker should run a pass
        self._waiting = True
        self._queue_changed = True
        self._pass_wanted = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._halted = False
        #: called with a job id when the job is destroyed or loses its boards
        self.job_end_listeners: list[Callable[[int], object]] = []
        #: told how long (s) each allocator pass took: a metrics seam
        self.pass_listeners: list[Callable[[float], object]] = []
        #: the service's running operations on job boards; a job's boards are powered off
        #: and released only when its operations have stopped
        self.activity = JobActivity()
        hooks = LifecycleHooks(
            destroy=self.destroy,
            job_ended=self._job_ended,
            requeued=self._requeued,
            finished=self._wake.set,
        )
        #: the power threads
        self.power = PowerChanges(
            store, machines, controller, events, config, self.allocation, self.activity, hooks
        )

    # ---- control -----------------------------------------------------------------
    def start(self) -> None:
        """Resume unfinished power changes and start the worker thread."""
        for job in self.store.jobs_in_states(JobState.POWER):
            self.power.drive(job.id)
        self.power.ended(self.store.destroyed_jobs_holding_boards())
        self._thread = threading.Thread(target=self._run, name="spalloc-lifecycle", daemon=True)
        self._thread.start()
        self.wake()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker and wait (bounded) for running power changes."""
        self._stop.set()
        self._wake.set()
        self.power.stop_resting()
        if self._thread is not None:
            self._thread.join(timeout)
        self.power.shutdown(timeout)
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
        self.power.ended([job_id])  # the worker has its boards powered off and freed
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
        self.power.drive(job_id)
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
                self.power.power_off_ended()
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

    def record_finished(self) -> None:
        """Record every power change finished on the pool, in one transaction.

        On failure the changes stay queued (in order) for the next pass.
        """
        finished = self.power.take_finished()
        if not finished:
            return
        done = [(f.job_id, f.on) for f in finished if isinstance(f, PowerDone)]
        off = [f for f in finished if isinstance(f, PoweredOff)]
        try:
            ready, when = self.store.finish_power(done, [(f.job_id, f.board_ids) for f in off])
        except Exception:
            self.power.put_back(finished)
            raise
        keys: dict[Hashable, None] = {}
        ready_set = set(ready)
        for f in finished:
            if isinstance(f, PowerDone) and f.job_id not in ready_set:
                continue
            keys[("job", f.job_id)] = keys[("machine", f.machine)] = None
        for f in off:
            self.allocation.released(f.machine_id, f.board_ids, when)
            self.power.forget(f.job_id)
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
            self.power.power_on_new(plans)
        self.store.age_requests(waiting)
        self._waiting = len(plans) < len(requests)
        return list(plans)

    def _requeued(self) -> None:
        """A job went back to the queue (its power-on failed): the next pass sees it."""
        self._queue_changed = True
