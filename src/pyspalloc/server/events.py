"""Change notifications for long polls, bridging worker threads and the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable


class EventHub:
    """Thread-safe publish/subscribe of change keys (e.g. ``("job", 7)``).

    ``notify`` may be called from any thread; ``wait`` is awaited on an event loop and
    returns when one of its keys is notified *after* the wait began, or on timeout.
    It also remembers what each viewer was last shown of a key (:meth:`mark_seen`), so
    that a long poll can first check whether it has already missed a change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[Hashable, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._seen: OrderedDict[tuple[Hashable, Hashable], Hashable] = OrderedDict()
        self.max_seen = 20000
        self._closed = False
        #: called with the keys of every notification (see :meth:`add_listener`)
        self._listeners: tuple[Callable[[tuple[Hashable, ...]], object], ...] = ()

    def close(self) -> None:
        """Wake every waiter, and make later waits return at once (the service is stopping).

        A long poll held at shutdown then answers with what it has instead of being
        cancelled by the server.
        """
        with self._lock:
            self._closed = True
            targets = [w for waiters in self._waiters.values() for w in waiters]
        self._wake(targets)

    def add_listener(self, listener: Callable[[tuple[Hashable, ...]], object]) -> None:
        """Also call ``listener(keys)`` on every :meth:`notify`, in the notifying thread.

        It must be quick and must not raise (e.g. hand the keys to an event loop).
        """
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Callable[[tuple[Hashable, ...]], object]) -> None:
        """Stop calling a listener added by :meth:`add_listener`."""
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def mark_seen(self, viewer: Hashable, key: Hashable, shown: Hashable) -> None:
        """Record that ``viewer`` has been shown ``key`` as ``shown`` (e.g. a job's state)."""
        with self._lock:
            self._seen[(viewer, key)] = shown
            self._seen.move_to_end((viewer, key))
            while len(self._seen) > self.max_seen:
                self._seen.popitem(last=False)

    def last_seen(self, viewer: Hashable, key: Hashable) -> Hashable | None:
        """What ``viewer`` was last shown of ``key`` (None if never, or forgotten)."""
        with self._lock:
            return self._seen.get((viewer, key))

    def notify(self, *keys: Hashable) -> None:
        """Wake every waiter on any of ``keys`` and tell the listeners."""
        with self._lock:
            targets = [w for k in keys for w in self._waiters.get(k, ())]
            listeners = self._listeners
        for listener in listeners:
            listener(keys)
        self._wake(targets)

    @staticmethod
    def _wake(targets: Iterable[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        for loop, event in targets:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop has closed
                pass

    async def wait(
        self,
        keys: Iterable[Hashable],
        timeout: float,
        changed: Callable[[], Awaitable[bool]] | None = None,
    ) -> bool:
        """Wait for a notification on any of ``keys``.

        Parameters
        ----------
        keys:
            What to listen to.
        timeout:
            Longest wait, in seconds.
        changed:
            If given, awaited once the wait is registered; if it says True (something
            changed already, e.g. since the caller last read it) the wait returns at
            once. Checking after registering means no change is lost in between.

        Returns
        -------
        bool
            True if notified, False on timeout or when the hub is closed.
        """
        loop = asyncio.get_running_loop()
        entry = (loop, asyncio.Event())
        keys = list(keys)
        with self._lock:
            if self._closed:
                return False
            for k in keys:
                self._waiters.setdefault(k, set()).add(entry)
        try:
            if changed is not None and await changed():
                return True
            await asyncio.wait_for(entry[1].wait(), timeout)
            return not self._closed
        except TimeoutError:
            return False
        finally:
            with self._lock:
                for k in keys:
                    waiters = self._waiters.get(k)
                    if waiters is not None:
                        waiters.discard(entry)
                        if not waiters:
                            del self._waiters[k]
