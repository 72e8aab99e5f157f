"""Which proxy websockets are open for which job and user, so a job's end can close them
all, and how many websockets and channels may be open."""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
from typing import Protocol

log = logging.getLogger(__name__)


def channel_budget(configured: int) -> int:
    """Return ``configured``, lowered to half the process's open-file limit if that is less.

    The other half stays for HTTP connections, the database and the service's own sockets.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft // 2 >= configured:
        return configured
    budget = max(16, soft // 2)
    log.warning(
        "proxy channels limited to %d (half of the open-file limit %d, not %d)",
        budget,
        soft,
        configured,
    )
    return budget


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
    max_user_channels:
        Channels the websockets of one user may hold open together.
    """

    def __init__(
        self, max_channels: int | None = None, max_user_channels: int | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._by_job: dict[int, set[Endable]] = {}
        self._by_user: dict[int, int] = {}
        self.max_channels = max_channels
        self.max_user_channels = max_user_channels
        self._channels = 0
        self._user_channels: dict[int | None, int] = {}

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

    def take_channel(self, user_id: int | None = None) -> str | None:
        """Count one more open channel of ``user_id``; if over a limit, count nothing and
        return why."""
        with self._lock:
            if self.max_channels is not None and self._channels >= self.max_channels:
                return f"the service has too many open channels (at most {self.max_channels})"
            mine = self._user_channels.get(user_id, 0)
            limit = self.max_user_channels
            if limit is not None and user_id is not None and mine >= limit:
                return f"too many channels for this user (at most {limit})"
            self._channels += 1
            self._user_channels[user_id] = mine + 1
            return None

    def give_channels(self, count: int = 1, user_id: int | None = None) -> None:
        """Count ``count`` channels of ``user_id`` closed."""
        if count <= 0:
            return
        with self._lock:
            self._channels = max(0, self._channels - count)
            left = self._user_channels.get(user_id, 0) - count
            if left > 0:
                self._user_channels[user_id] = left
            else:
                self._user_channels.pop(user_id, None)

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
