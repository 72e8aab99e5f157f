"""Typed, read-only descriptions of a job: its state, its allocation, its power.

They are parsed from the service's JSON (web-api.md §4.5, §4.8 and §4.9) by
:meth:`SpallocJob.describe() <pyspalloc.client.SpallocJob.describe>` and
:meth:`SpallocJob.get_allocation() <pyspalloc.client.SpallocJob.get_allocation>`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: a board's connection: (job-relative Ethernet chip x, y, hostname)
Connection = tuple[int, int, str]
#: a board's triad coordinates (x, y, z)
Triad = tuple[int, int, int]


def job_id_of(url: str) -> int | None:
    """The numeric id at the end of a job URL (``None`` if it is not numeric)."""
    last = url.rstrip("/").rsplit("/", 1)[-1]
    return int(last) if last.isdigit() else None


@dataclass(frozen=True)
class JobAllocation:
    """The boards a job holds (``GET {job}/machine``)."""

    machine: str | None
    width: int | None
    height: int | None
    depth: int | None
    #: one per board, in the service's order
    connections: tuple[Connection, ...]
    #: triad coordinates of the same boards, in the order of ``connections``
    triads: tuple[Triad, ...]

    @classmethod
    def from_json(cls, found: Mapping[str, Any]) -> JobAllocation:
        """Parse the service's allocation object."""
        return cls(
            machine=found.get("machine-name") or None,
            width=found.get("width"),
            height=found.get("height"),
            depth=found.get("depth"),
            connections=tuple(
                (int(xy[0]), int(xy[1]), str(host)) for xy, host in found.get("connections") or ()
            ),
            triads=tuple((int(t[0]), int(t[1]), int(t[2])) for t in found.get("boards") or ()),
        )


@dataclass(frozen=True)
class JobDescription:
    """A job as the service describes it; the allocation and power fields are ``None``
    (or empty) when they were not read or there is nothing allocated."""

    id: int | None
    url: str
    #: the state's name as the service wrote it (``QUEUED``, ``POWER``, ``READY``,
    #: ``DESTROYED``; ``UNKNOWN`` when the user may list the job but not read it)
    state: str
    owner: str | None = None
    start_time: str | None = None
    finish_time: str | None = None
    keepalive_host: str | None = None
    keepalive_time: str | None = None
    reason: str | None = None
    #: the job's creation request as the service echoes it
    request: Mapping[str, Any] | None = None
    machine: str | None = None
    width: int | None = None
    height: int | None = None
    depth: int | None = None
    connections: tuple[Connection, ...] = ()
    triads: tuple[Triad, ...] = ()
    #: whether every board is powered (``None``: not read, or nothing allocated)
    power: bool | None = None

    def __post_init__(self) -> None:
        # accept any sequences for the board lists; keep them immutable
        object.__setattr__(self, "connections", tuple(tuple(c) for c in self.connections))
        object.__setattr__(self, "triads", tuple(tuple(t) for t in self.triads))

    @classmethod
    def from_json(cls, url: str, state: Mapping[str, Any]) -> JobDescription:
        """Parse the service's job state object (``GET {job}``) of the job at ``url``."""
        request = state.get("original-request")
        return cls(
            id=job_id_of(url),
            url=url,
            state=str(state.get("state", "UNKNOWN")),
            owner=state.get("owner"),
            start_time=state.get("start-time"),
            finish_time=state.get("finish-time"),
            keepalive_host=state.get("keepalive-host"),
            keepalive_time=state.get("keep-alive-time"),
            reason=state.get("reason"),
            request=request if isinstance(request, dict) else None,
        )

    @property
    def is_live(self) -> bool:
        """Whether the job holds boards now (POWER or READY)."""
        return self.state in ("POWER", "READY")

    @property
    def num_boards(self) -> int:
        """How many boards the job holds (as far as read)."""
        return len(self.triads) or len(self.connections)

    @property
    def root_host(self) -> str | None:
        """The hostname of the board at job chip (0, 0), if read."""
        return next((h for x, y, h in self.connections if (x, y) == (0, 0)), None)

    def with_allocation(self, allocation: JobAllocation | None) -> JobDescription:
        """This description with the allocation's fields filled in."""
        if allocation is None:
            return self
        return dataclasses.replace(
            self,
            machine=allocation.machine,
            width=allocation.width,
            height=allocation.height,
            depth=allocation.depth,
            connections=allocation.connections,
            triads=allocation.triads,
        )


@dataclass(frozen=True)
class GroupQuota:
    """An accounting group's quota, usage and what is left, in board-seconds
    (``quota`` and ``remaining`` are ``None`` when the group is unlimited)."""

    id: int
    name: str
    type: str
    quota: float | None
    used: float
    remaining: float | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupQuota:
        """Parse one entry of the service's ``groups`` list."""

        def amount(value: Any) -> float | None:
            return None if value is None else float(value)

        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            type=str(data.get("type", "group")),
            quota=amount(data.get("quota")),
            used=float(data.get("used") or 0.0),
            remaining=amount(data.get("remaining")),
        )
