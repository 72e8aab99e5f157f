"""The lifecycle's power threads: a fixed pool running power changes as they arrive.

A power change blocks for as long as the hardware takes (seconds for real BMPs), so
each runs on one of a few threads. Handing one over is a put on a
:class:`queue.SimpleQueue`, which the allocator pass and a destroy do for every job.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["PowerPool"]

log = logging.getLogger(__name__)

#: a task: the function and its arguments (None: a thread's signal to stop)
_Task = tuple[Callable[..., object], tuple[Any, ...]] | None


class PowerPool:
    """``workers`` threads named ``name-N`` running submitted calls in arrival order."""

    def __init__(self, workers: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., object], *args: Any) -> bool:
        """Run ``fn(*args)`` on a pool thread; False (not run) once shut down."""
        if self._closed:
            return False
        self._tasks.put((fn, args))
        return True

    def shutdown(self, timeout: float) -> None:
        """Drop the calls not started, and wait (at most ``timeout`` s) for running ones."""
        self._closed = True
        while True:
            try:
                self._tasks.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            fn, args = task
            try:
                fn(*args)
            except Exception:
                log.exception("power change failed unexpectedly")
