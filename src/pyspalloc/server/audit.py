"""The audit log: one JSON object per line on the logger ``pyspalloc.audit``.

Every line has ``event`` (``login``, ``login_failed``, ``logout``, ``password_changed``,
``user_created``, ``job_created``, ...) and ``time`` (Unix seconds), then the fields of
the event: usually ``user`` (who acted), ``address`` (the client) and the object acted
on. Values are JSON-encoded, so a user name cannot forge or split a line.
"""

from __future__ import annotations

import json
import logging
import time

AUDIT_LOGGER = "pyspalloc.audit"

log = logging.getLogger(AUDIT_LOGGER)


def audit(event: str, **fields: str | int | float | bool | None) -> None:
    """Log one audit event with its fields (at INFO, as a single JSON object)."""
    if log.isEnabledFor(logging.INFO):
        record = {"event": event, "time": round(time.time(), 3), **fields}
        log.info("%s", json.dumps(record, separators=(",", ":"), ensure_ascii=True))
