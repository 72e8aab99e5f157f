"""The periodic task that moves long-ended jobs to history and purges old history."""

from __future__ import annotations

import logging
import threading
import time

from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.store import Store

log = logging.getLogger(__name__)


class HistoryWorker:
    """Every ``history_period`` seconds: move jobs that ended more than ``grace_period``
    ago to the history tables, then delete history older than ``history_retention``."""

    def __init__(self, store: Store, config: ServiceConfig) -> None:
        self.store = store
        self.config = config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> tuple[int, int]:
        """Do one pass now; return (jobs moved, historical jobs purged)."""
        now = time.time()
        moved = self.store.move_to_history(now - self.config.grace_period)
        purged = 0
        if self.config.history_retention is not None:
            purged = self.store.purge_history(now - self.config.history_retention)
        if moved or purged:
            log.info("history: %d jobs moved, %d purged", moved, purged)
        return moved, purged

    def start(self) -> None:
        """Start the worker thread (a daemon; :meth:`stop` ends it)."""
        self._thread = threading.Thread(target=self._run, name="history", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker and wait (at most ``timeout``) for a pass in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        period = max(0.1, self.config.history_period)
        while not self._stop.wait(period):
            try:
                self.run_once()
            except Exception:  # the next pass retries
                log.exception("history pass failed")
