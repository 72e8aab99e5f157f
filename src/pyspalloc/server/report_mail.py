"""Mailing each new board report to the site's administrators over SMTP.

A worker thread looks for reports newer than the last one it saw, so nothing is sent on
the request path and a slow or absent mail server never delays a user. Each mail is one
SMTP conversation bounded by ``smtp_timeout``; a failed mail is logged, not retried.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from email.message import EmailMessage

from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.store import BoardReport, Store

log = logging.getLogger(__name__)

#: how often (s) the worker looks for new reports
POLL_PERIOD = 2.0
#: most reports mailed in one pass (the rest wait for the next)
BATCH = 50
SUBJECT = "Spalloc board issue"


def report_message(report: BoardReport, sender: str, to: str) -> EmailMessage:
    """Return the mail describing one board report."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    x, y, z = report.triad
    message["Subject"] = f"{SUBJECT}: {report.machine} board [{x},{y},{z}]"
    status = "in service" if report.functioning else "OUT OF SERVICE"
    message.set_content(
        f"Board [{x},{y},{z}] of machine {report.machine} (board id {report.board_id}) was "
        f"reported by {report.reporter or 'an unknown user'} for job {report.job_id}.\n"
        f"The board is now {status}.\n\nIssue:\n{report.issue}\n"
    )
    return message


class ReportMailer:
    """Sends a mail to ``report_email_to`` for every board report made after it starts."""

    def __init__(self, store: Store, config: ServiceConfig, period: float = POLL_PERIOD) -> None:
        self.store = store
        self.config = config
        self.period = period
        self.sent = 0
        self._last = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Remember the newest report so far, then start the worker thread."""
        self._last = self.store.newest_board_report_id()
        self._thread = threading.Thread(target=self._run, name="report-mail", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker (a mail being sent finishes first, within ``smtp_timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> int:
        """Mail the reports made since the last pass; return how many were mailed."""
        to = self.config.report_email_to
        fresh = self.store.board_reports_after(self._last, BATCH)
        mailed = 0
        for report in fresh:
            self._last = max(self._last, report.id)
            if to is None or self._stop.is_set():
                continue
            try:
                self._send(report_message(report, self.config.report_email_from, to))
                mailed += 1
            except (OSError, smtplib.SMTPException) as error:
                log.warning("could not mail board report %d: %s", report.id, error)
        self.sent += mailed
        return mailed

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout) as smtp:
            smtp.send_message(message)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.run_once()
            except Exception:  # a database hiccup: the next pass retries
                log.exception("report mail pass failed")
