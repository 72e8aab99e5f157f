"""``notify_job`` / ``notify_machine``: pushing ``jobs_changed`` / ``machines_changed``.

The service's :class:`~pyspalloc.server.events.EventHub` calls :meth:`Notifier.changed`
(from whatever thread made the change) with keys such as ``("job", 7)`` and
``("machine", "spin24")``; the notifier hands them to the listener's event loop, which
adds them to each subscriber's pending set and writes one line per kind a moment later
(changes close together are coalesced).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable
from typing import Protocol, TypeVar

T = TypeVar("T")

#: delay before pending changes are written, so a burst becomes one line (s)
COALESCE = 0.02

#: most job ids plus machine names one connection may watch one by one
MAX_WATCHES = 4096


class Subscriber(Protocol):
    """A connection that can be sent notifications."""

    def send_notifications(self, jobs: list[int], machines: list[str]) -> None:
        """Write the notification lines (on the event loop); may drop the connection."""


class Watches:
    """What one connection listens to: ``None`` means everything, else a set."""

    def __init__(self) -> None:
        self.jobs: set[int] | None = set()
        self.machines: set[str] | None = set()

    @property
    def size(self) -> int:
        """How many single jobs and machines are watched."""
        return len(self.jobs or ()) + len(self.machines or ())

    @property
    def empty(self) -> bool:
        """Whether nothing is watched."""
        return (
            self.jobs is not None and self.machines is not None and not (self.jobs or self.machines)
        )


def watch(current: set[T] | None, item: T | None, add: bool) -> set[T] | None:
    """Update a watch set the way the old server does (``item`` None: everything)."""
    if item is None:
        return None if add else set()
    if current is not None:
        if add:
            current.add(item)
        else:
            current.discard(item)
    return current


class Notifier:
    """Fans service changes out to subscribed v1 connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._subscribers: dict[Subscriber, Watches] = {}
        self._active = False  # read by other threads: any subscriber at all?
        self._lock = threading.Lock()
        self._incoming: list[tuple[Hashable, ...]] = []
        self._scheduled = False

    # ---- subscriptions (event loop) ----------------------------------------------
    def watches(self, subscriber: Subscriber) -> Watches:
        """The subscriber's watches (created empty)."""
        found = self._subscribers.get(subscriber)
        if found is None:
            found = self._subscribers[subscriber] = Watches()
        return found

    def update(self, subscriber: Subscriber) -> None:
        """Forget a subscriber that no longer watches anything."""
        found = self._subscribers.get(subscriber)
        if found is not None and found.empty:
            self.forget(subscriber)
        self._active = bool(self._subscribers)

    def forget(self, subscriber: Subscriber) -> None:
        """Drop a subscriber (its connection closed)."""
        self._subscribers.pop(subscriber, None)
        self._active = bool(self._subscribers)

    # ---- changes (any thread) ----------------------------------------------------
    def changed(self, keys: tuple[Hashable, ...]) -> None:
        """Record changed keys; called by the event hub in the notifying thread."""
        if not self._active:
            return
        with self._lock:
            self._incoming.append(keys)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._loop.call_later, COALESCE, self._flush)
        except RuntimeError:  # the loop has closed
            pass

    # ---- delivery (event loop) ---------------------------------------------------
    def _flush(self) -> None:
        with self._lock:
            incoming, self._incoming = self._incoming, []
            self._scheduled = False
        jobs: set[int] = set()
        machines: set[str] = set()
        for keys in incoming:
            for key in keys:
                if isinstance(key, tuple) and len(key) == 2:
                    kind, value = key
                    if kind == "job" and isinstance(value, int):
                        jobs.add(value)
                    elif kind == "machine" and isinstance(value, str):
                        machines.add(value)
        for subscriber, w in list(self._subscribers.items()):
            mine_jobs = jobs if w.jobs is None else jobs & w.jobs
            mine_machines = machines if w.machines is None else machines & w.machines
            if mine_jobs or mine_machines:
                subscriber.send_notifications(sorted(mine_jobs), sorted(mine_machines))
