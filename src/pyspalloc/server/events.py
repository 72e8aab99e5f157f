"""Change notifications for long polls, bridging worker threads and the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable


class EventHub:
    """Thread-safe publish/subscribe of change keys (e.g. ``("job", 7)``).

    ``notify`` may be called from any thread; ``wait`` is awaited on an event loop and
    returns when one of its keys is notified *after* the wait began, or on timeout.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[Hashable, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._versions: dict[Hashable, int] = {}
        self._seen: OrderedDict[tuple[Hashable, Hashable], int] = OrderedDict()
        self.max_seen = 20000

    def version(self, key: Hashable) -> int:
        """Return how many notifications ``key`` has had (in this process)."""
        with self._lock:
            return self._versions.get(key, 0)

    def mark_seen(self, viewer: Hashable, key: Hashable, version: int) -> None:
        """Record that ``viewer`` has been shown ``key`` as of ``version``."""
        with self._lock:
            self._seen[(viewer, key)] = version
            self._seen.move_to_end((viewer, key))
            while len(self._seen) > self.max_seen:
                self._seen.popitem(last=False)

    def unseen_change(self, viewer: Hashable, key: Hashable) -> bool:
        """Whether ``key`` changed after ``viewer`` was last shown it.

        This closes the long-poll race of the Java server: a change that lands between
        a client's read and its ``wait=true`` request still wakes that request.
        """
        with self._lock:
            seen = self._seen.get((viewer, key))
            return seen is not None and seen < self._versions.get(key, 0)

    def notify(self, *keys: Hashable) -> None:
        """Wake every waiter on any of ``keys``."""
        with self._lock:
            for k in keys:
                self._versions[k] = self._versions.get(k, 0) + 1
            targets = [w for k in keys for w in self._waiters.get(k, ())]
        for loop, event in targets:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop has closed
                pass

    async def wait(
        self, keys: Iterable[Hashable], timeout: float, viewer: Hashable | None = None
    ) -> bool:
        """Wait for a notification on any of ``keys``.

        Parameters
        ----------
        keys:
            What to listen to.
        timeout:
            Longest wait, in seconds.
        viewer:
            If given, return at once when a key changed since ``viewer`` last saw it
            (checked after registering, so no change is lost).

        Returns
        -------
        bool
            True if notified, False on timeout.
        """
        loop = asyncio.get_running_loop()
        entry = (loop, asyncio.Event())
        keys = list(keys)
        with self._lock:
            for k in keys:
                self._waiters.setdefault(k, set()).add(entry)
        try:
            if viewer is not None and any(self.unseen_change(viewer, k) for k in keys):
                return True
            await asyncio.wait_for(entry[1].wait(), timeout)
            return True
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
