"""Change notifications for long polls, bridging worker threads and the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable, Iterable


class EventHub:
    """Thread-safe publish/subscribe of change keys (e.g. ``("job", 7)``).

    ``notify`` may be called from any thread; ``wait`` is awaited on an event loop and
    returns when one of its keys is notified *after* the wait began, or on timeout.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[Hashable, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def notify(self, *keys: Hashable) -> None:
        """Wake every waiter on any of ``keys``."""
        with self._lock:
            targets = [w for k in keys for w in self._waiters.get(k, ())]
        for loop, event in targets:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop has closed
                pass

    async def wait(self, keys: Iterable[Hashable], timeout: float) -> bool:
        """Wait for a notification on any of ``keys``.

        Parameters
        ----------
        keys:
            What to listen to.
        timeout:
            Longest wait, in seconds.

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
