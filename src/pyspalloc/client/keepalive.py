"""The background thread that keeps a created job alive.

It PUTs ``alive`` to the job's keepalive URL every half keepalive interval, then reads
the job's state. A failed keepalive is retried with exponential back-off bounded by
that half interval (the session renews itself on 401/403). After several failures in a
row it logs a warning and sets :attr:`KeepaliveThread.failed` (cleared when keepalives
work again); once the job must have expired, or the service says it is destroyed or
gone, the thread stops.
"""

from __future__ import annotations

import logging
import threading
import time

from pyspalloc.client.session import Session, SpallocHTTPError
from pyspalloc.client.state import SpallocState
from pyspalloc.client.utils import join_url
from pyspalloc.exceptions import SpallocException

logger = logging.getLogger(__name__)

#: shortest time between keepalives (s)
MIN_PERIOD = 0.5
#: failed attempts in a row before the failure is reported
WARN_AFTER = 3
#: first retry delay after a failure (s); it doubles up to the period
FIRST_RETRY = 0.5
#: how long past the expiry deadline to keep trying (s); the service checks expiry
#: every 30 s
GRACE = 60.0


class KeepaliveThread(threading.Thread):
    """Sends keepalives for one job until stopped.

    Parameters
    ----------
    session:
        The session to send through.
    job_url:
        The job's URL.
    interval:
        The job's keepalive interval in seconds; keepalives go every ``interval / 2``
        (:attr:`period`, which may be changed while the thread runs).
    """

    def __init__(self, session: Session, job_url: str, interval: float):
        super().__init__(name=f"spalloc-keepalive {job_url}", daemon=True)
        self._session = session
        self._job_url = job_url
        self._keepalive_url = join_url(job_url, "keepalive")
        self.interval = float(interval)
        self.period = max(self.interval / 2, MIN_PERIOD)
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._failed = False
        self._error: BaseException | None = None
        self._failures = 0
        self.sent = 0
        self.last_success = time.monotonic()

    @property
    def failed(self) -> bool:
        """Whether keepalives are currently failing (or stopped for a failure)."""
        with self._lock:
            return self._failed

    @property
    def error(self) -> BaseException | None:
        """The most recent keepalive failure, if any."""
        with self._lock:
            return self._error

    @property
    def stopped(self) -> bool:
        """Whether the thread has been asked to stop or stopped by itself."""
        return self._stop_event.is_set()

    def stop(self, wait: float | None = 5.0) -> None:
        """Stop the thread.

        Parameters
        ----------
        wait:
            Seconds to wait for the thread to end (``None``: do not wait).
        """
        self._stop_event.set()
        if wait is not None and self.is_alive() and threading.current_thread() is not self:
            self.join(wait)

    def run(self) -> None:
        anchor = time.monotonic()
        retry: float | None = None  # the back-off delay while failing
        while not self._stop_event.is_set():
            delay = self.period if retry is None else min(retry, self.period)
            remaining = anchor + delay - time.monotonic()
            if remaining > 0:
                # short waits, so a changed period takes effect soon
                self._stop_event.wait(min(remaining, 1.0))
                continue
            anchor = time.monotonic()
            try:
                self._keepalive_once()
            except SpallocHTTPError as problem:
                if problem.status in (404, 410):
                    self._finish(SpallocException(f"job {self._job_url} is gone: {problem}"))
                    break
                self._attempt_failed(problem)
            except Exception as problem:  # never die silently: report and retry
                self._attempt_failed(problem)
            else:
                self._succeeded()
                retry = None
                continue
            retry = FIRST_RETRY if retry is None else retry * 2

    def _keepalive_once(self) -> None:
        self._session.put(self._keepalive_url, "alive")
        reply = self._session.get(self._job_url)
        state = SpallocState.from_name(reply.json().get("state"))
        if state == SpallocState.DESTROYED:
            reason = reply.json().get("reason") or "no reason given"
            self._finish(SpallocException(f"job {self._job_url} was destroyed: {reason}"))

    def _succeeded(self) -> None:
        with self._lock:
            if self._failed and not self._stop_event.is_set():
                logger.warning("keepalive for %s works again", self._job_url)
                self._failed = False
            self._failures = 0
            self.sent += 1
            self.last_success = time.monotonic()

    def _attempt_failed(self, error: BaseException) -> None:
        with self._lock:
            self._failures += 1
            self._error = error
            report = self._failures == WARN_AFTER
            if self._failures >= WARN_AFTER:
                self._failed = True
            overdue = time.monotonic() - self.last_success > self.interval + GRACE
        if report:
            logger.warning(
                "keepalive for %s failed %d times in a row; the job may expire: %s",
                self._job_url,
                WARN_AFTER,
                error,
            )
        if overdue:
            logger.error("giving up keeping %s alive; it has probably expired", self._job_url)
            self._finish(error)

    def _finish(self, error: BaseException) -> None:
        with self._lock:
            self._failed = True
            self._error = error
        if not self._stop_event.is_set():
            logger.warning("stopped keeping %s alive: %s", self._job_url, error)
        self._stop_event.set()
