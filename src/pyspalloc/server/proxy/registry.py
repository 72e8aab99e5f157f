"""Which proxy websockets are open for which job and user, so a job's end can close them
all, and how many websockets and channels may be open."""

from __future__ import annotations

import asyncio
import threading
from typing import Protocol


class Endable(Protocol):
    """What the registry needs of a proxy session."""

    job_id: int
    user_id: int | None
    loop: asyncio.AbstractEventLoop

    def end(self, reason: str) -> None:
        """Close every channel and the websocket (called on the session's loop)."""


class ProxyRegistry:
    """Thread-safe index of live proxy sessions by job id.

    The lifecycle calls :meth:`close_job` (from any thread) when a job is destroyed or
    re-allocated; every websocket of that job then closes with code 1000 and the reason.

    Parameters
    ----------
    max_channels:
        Channels all websockets together may hold open (each is a socket of the service).
    """

    def __init__(self, max_channels: int | None = None) -> None:
        self._lock = threading.Lock()
        self._by_job: dict[int, set[Endable]] = {}
        self._by_user: dict[int, int] = {}
        self.max_channels = max_channels
        self._channels = 0

    def add(
        self, session: Endable, per_job: int | None = None, per_user: int | None = None
    ) -> str | None:
        """Register a session unless its job or user has too many; return why not, or None."""
        with self._lock:
            sessions = self._by_job.get(session.job_id, set())
            if per_job is not None and len(sessions) >= per_job:
                return f"too many proxy websockets for this job (at most {per_job})"
            user = session.user_id
            if per_user is not None and user is not None and self._by_user.get(user, 0) >= per_user:
                return f"too many proxy websockets for this user (at most {per_user})"
            if session not in sessions:
                self._by_job[session.job_id] = sessions
                sessions.add(session)
                if user is not None:
                    self._by_user[user] = self._by_user.get(user, 0) + 1
        return None

    def remove(self, session: Endable) -> None:
        """Forget a session (idempotent)."""
        with self._lock:
            sessions = self._by_job.get(session.job_id)
            if sessions is None or session not in sessions:
                return
            sessions.discard(session)
            if not sessions:
                del self._by_job[session.job_id]
            user = session.user_id
            if user is not None:
                left = self._by_user.get(user, 1) - 1
                if left > 0:
                    self._by_user[user] = left
                else:
                    self._by_user.pop(user, None)

    def take_channel(self) -> bool:
        """Count one more open channel; False (nothing counted) if the service is full."""
        with self._lock:
            if self.max_channels is not None and self._channels >= self.max_channels:
                return False
            self._channels += 1
            return True

    def give_channels(self, count: int = 1) -> None:
        """Count ``count`` channels closed."""
        with self._lock:
            self._channels = max(0, self._channels - count)

    @property
    def channels(self) -> int:
        """How many channels are open in all."""
        return self._channels

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
            sessions = list(self._by_job.get(job_id, ()))
        for session in sessions:
            _end_on_loop(session, reason)
        return len(sessions)

    def close_all(self, reason: str = "service stopping") -> int:
        """Close every proxy websocket of every job; safe to call from any thread."""
        with self._lock:
            sessions = [s for group in self._by_job.values() for s in group]
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
