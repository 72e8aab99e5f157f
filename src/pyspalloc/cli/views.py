"""How the commands show jobs: the ``--json`` form, tables, ages and state labels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyspalloc.client import JobDescription


def parse_time(text: object) -> datetime | None:
    """Parse an ISO-8601 timestamp from the service."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def age(text: object) -> str | None:
    """How long ago a service timestamp was, e.g. ``3m05s``."""
    when = parse_time(text)
    if when is None:
        return None
    seconds = max(0, int((datetime.now(UTC) - when).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours >= 48:
        return f"{hours // 24}d{hours % 24:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def power_text(job: JobDescription) -> str | None:
    """``ON``, ``OFF``, or ``None`` when the power was not read."""
    return None if job.power is None else ("ON" if job.power else "OFF")


def job_json(job: JobDescription) -> dict[str, Any]:
    """The JSON form of a job printed by ``--json``."""
    return {
        "id": job.id,
        "url": job.url,
        "state": job.state,
        "owner": job.owner,
        "start_time": job.start_time,
        "finish_time": job.finish_time,
        "keepalive_host": job.keepalive_host,
        "keepalive_time": job.keepalive_time,
        "reason": job.reason,
        "request": None if job.request is None else dict(job.request),
        "machine": job.machine,
        "width": job.width,
        "height": job.height,
        "depth": job.depth,
        "num_boards": job.num_boards,
        "boards": [list(t) for t in job.triads],
        "connections": [{"x": x, "y": y, "hostname": h} for x, y, h in job.connections],
        "power": power_text(job),
    }


def connection_rows(job: JobDescription) -> list[list[Any]]:
    """Rows of a connections table: job chip, hostname and triad of each board."""
    triads: list[tuple[int, int, int] | None] = list(job.triads)
    triads += [None] * (len(job.connections) - len(triads))
    return [
        [f"{x}, {y}", host, None if t is None else ", ".join(map(str, t))]
        for (x, y, host), t in zip(job.connections, triads, strict=False)
    ]


def state_label(state: str) -> str:
    """A coloured, explained job state."""
    return {
        "QUEUED": "[yellow]QUEUED[/] (waiting for boards)",
        "POWER": "[cyan]POWER[/] (powering the boards)",
        "READY": "[bold green]READY[/]",
        "DESTROYED": "[red]DESTROYED[/]",
    }.get(state, state)
