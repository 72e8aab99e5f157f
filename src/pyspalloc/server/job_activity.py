"""Service-side activity on a job's boards, so that a job's end can stop it and wait for it.

Every operation the service runs on a job's boards (a REST ``memory`` read or write, a
router reset, an open proxy websocket) holds an :class:`Activity` from
:meth:`JobActivity.begin` while it can touch the boards. When the job ends (destroyed, or
its allocation lost after a failed power change) the lifecycle calls :meth:`JobActivity.end`,
which cancels every activity of the job, and then :meth:`JobActivity.wait_idle` before it
powers the boards off and hands them to anyone else. An operation checks
:attr:`Activity.cancelled` between its bursts of SCP packets and stops.

``begin`` refuses a job that has ended and not yet released its boards; after the release
(:meth:`JobActivity.forget`) the caller's own re-check of the job in the store (made after
``begin``) refuses it, so no activity can start on boards that changed hands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Activity", "JobActivity", "JobEnded"]


class JobEnded(Exception):
    """The job ended (or lost its boards) while an operation on its boards was running."""


class Activity:
    """One operation on a job's boards; :attr:`cancelled` is set when the job ends."""

    __slots__ = ("cancelled", "job_id", "what")

    def __init__(self, job_id: int, what: str) -> None:
        self.job_id = job_id
        self.what = what
        self.cancelled = threading.Event()

    def check(self) -> None:
        """Raise :class:`JobEnded` if the job has ended.

        Raises
        ------
        JobEnded
            If the activity was cancelled.
        """
        if self.cancelled.is_set():
            raise JobEnded(f"job {self.job_id} ended during {self.what}")

    def cancel(self) -> None:
        """Mark the activity cancelled."""
        self.cancelled.set()


class JobActivity:
    """Thread-safe registry of the running operations of every job."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._running: dict[int, set[Activity]] = {}
        self._ended: set[int] = set()

    def start(self, job_id: int, what: str) -> Activity:
        """Register an activity of ``job_id``; pair with :meth:`finish`.

        Raises
        ------
        JobEnded
            If the job has ended and its boards are not yet released.
        """
        activity = Activity(job_id, what)
        with self._lock:
            if job_id in self._ended:
                raise JobEnded(f"job {job_id} has ended")
            self._running.setdefault(job_id, set()).add(activity)
        return activity

    def finish(self, activity: Activity) -> None:
        """Forget a finished activity (idempotent)."""
        with self._lock:
            running = self._running.get(activity.job_id)
            if running is not None:
                running.discard(activity)
                if not running:
                    del self._running[activity.job_id]
                    self._lock.notify_all()

    @contextmanager
    def begin(self, job_id: int, what: str) -> Iterator[Activity]:
        """Hold an activity of ``job_id`` for the block (see :meth:`start`)."""
        activity = self.start(job_id, what)
        try:
            yield activity
        finally:
            self.finish(activity)

    def end(self, job_id: int) -> int:
        """Refuse new activities of ``job_id`` and cancel the running ones; return how many."""
        with self._lock:
            self._ended.add(job_id)
            running = list(self._running.get(job_id, ()))
        for activity in running:
            activity.cancel()
        return len(running)

    def count(self, job_id: int) -> int:
        """Return how many activities of ``job_id`` are running."""
        with self._lock:
            return len(self._running.get(job_id, ()))

    def wait_idle(self, job_id: int, timeout: float) -> bool:
        """Wait up to ``timeout`` s until no activity of ``job_id`` runs; True if none does."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running.get(job_id):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def forget(self, job_id: int) -> None:
        """The job's boards are released: drop its ended mark (the store now refuses it)."""
        with self._lock:
            self._ended.discard(job_id)
