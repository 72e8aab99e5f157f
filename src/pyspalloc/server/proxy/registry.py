"""Which proxy websockets are open for which job, so a job's end can close them all."""

from __future__ import annotations

import asyncio
import threading
from typing import Protocol


class Endable(Protocol):
    """What the registry needs of a proxy session."""

    job_id: int
    loop: asyncio.AbstractEventLoop

    def end(self, reason: str) -> None:
        """Close every channel and the websocket (called on the session's loop)."""


class ProxyRegistry:
    """Thread-safe index of live proxy sessions by job id.

    The lifecycle calls :meth:`close_job` (from any thread) when a job is destroyed or
    re-allocated; every websocket of that job then closes with code 1000 and the reason.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_job: dict[int, set[Endable]] = {}

    def add(self, session: Endable) -> None:
        """Register a session."""
        with self._lock:
            self._by_job.setdefault(session.job_id, set()).add(session)

    def remove(self, session: Endable) -> None:
        """Forget a session (idempotent)."""
        with self._lock:
            sessions = self._by_job.get(session.job_id)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self._by_job[session.job_id]

    def count(self, job_id: int | None = None) -> int:
        """Return how many sessions are open (for ``job_id``, or in all)."""
        with self._lock:
            if job_id is None:
                return sum(len(s) for s in self._by_job.values())
            return len(self._by_job.get(job_id, ()))

    def close_job(self, job_id: int, reason: str = "job destroyed") -> int:
        """Close every proxy websocket of ``job_id``; safe to call from any thread.

        Returns
        -------
        int
            How many sessions were told to close.
        """
        with self._lock:
            sessions = list(self._by_job.pop(job_id, ()))
        for session in sessions:
            _end_on_loop(session, reason)
        return len(sessions)

    def close_all(self, reason: str = "service stopping") -> int:
        """Close every proxy websocket of every job; safe to call from any thread."""
        with self._lock:
            sessions = [s for group in self._by_job.values() for s in group]
            self._by_job.clear()
        for session in sessions:
            _end_on_loop(session, reason)
        return len(sessions)


def _end_on_loop(session: Endable, reason: str) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is session.loop:
        session.end(reason)
        return
    try:
        session.loop.call_soon_threadsafe(session.end, reason)
    except RuntimeError:  # that loop has closed: nothing left to close
        pass
