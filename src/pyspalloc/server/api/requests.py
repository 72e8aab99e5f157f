"""Parsing and validation of ``POST jobs`` bodies (web-api.md §4.4)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pyspalloc.server.api.common import bad

_FIELDS = frozenset(
    {
        "keepalive-interval", "num-boards", "dimensions", "board", "machine-name", "tags",
        "max-dead-boards", "owner", "group", "nmpi-collab", "nmpi-job-id",
    }
)  # fmt: skip
_INT_MAX = 2**31 - 1
#: a collab's name, which becomes a group name (as the admin pages allow them)
_COLLAB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BoardLocator:
    """One way of naming a board: triad, physical coordinates or IP address."""

    triad: tuple[int, int, int] | None = None
    physical: tuple[int, int, int] | None = None
    address: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the kebab-case JSON form."""
        if self.triad is not None:
            return dict(zip(("x", "y", "z"), self.triad, strict=True))
        if self.physical is not None:
            return dict(zip(("cabinet", "frame", "board"), self.physical, strict=True))
        return {"address": self.address}


@dataclass(frozen=True)
class CreateJob:
    """A validated job creation request."""

    keepalive: float
    num_boards: int | None
    width: int | None
    height: int | None
    board: BoardLocator | None
    machine_name: str | None
    tags: tuple[str, ...] | None
    max_dead_boards: int
    owner: str | None
    group: str | None
    nmpi_collab: str | None = None
    nmpi_job_id: int | None = None

    def original(self, owner: str) -> dict[str, Any]:
        """Return the request as stored and echoed (defaults applied)."""
        return {
            "owner": owner,
            "group": self.group,
            "nmpi-collab": self.nmpi_collab,
            "nmpi-job-id": self.nmpi_job_id,
            "keepalive-interval": self.keepalive,
            "num-boards": self.num_boards,
            "dimensions": None
            if self.width is None
            else {"width": self.width, "height": self.height},
            "board": None if self.board is None else self.board.to_json(),
            "machine-name": self.machine_name,
            "tags": None if self.tags is None else list(self.tags),
            "max-dead-boards": self.max_dead_boards,
        }


def parse_duration(value: Any) -> float:
    """Parse an ISO-8601 duration (``PT2M30S``) or a number of seconds.

    Raises
    ------
    ApiError
        400 naming ``keepalive-interval`` if the value is not a duration.
    """
    if isinstance(value, bool):
        raise bad("keepalive-interval must be an ISO-8601 duration such as PT60S")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if (
            match
            and any(match.group(k) for k in "dhms")
            and not value.strip().upper().endswith("T")
        ):
            parts = {k: float(match.group(k) or 0) for k in "dhms"}
            return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    raise bad("keepalive-interval must be an ISO-8601 duration such as PT60S")


def _int(obj: dict[str, Any], key: str, name: str, low: int, high: int | None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{name} must be an integer")
    if value > _INT_MAX:
        raise bad(f"{name} is too large")
    if value < low or (high is not None and value > high):
        limit = f"at least {low}" if high is None else f"{low} to {high}"
        raise bad(f"{name} must be {limit}")
    return value


def _object(value: Any, name: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(f"{name} must be an object")
    for key in value:
        if key not in allowed:
            raise bad(f"unrecognized field {name}.{key}")
    return value


def _board(value: Any) -> BoardLocator:
    obj = _object(value, "board", {"x", "y", "z", "cabinet", "frame", "board", "address"})
    x, y, z = (_int(obj, k, f"board.{k}", 0, 20 if k != "z" else 2) for k in "xyz")
    cabinet = _int(obj, "cabinet", "board.cabinet", 0, 31)
    frame = _int(obj, "frame", "board.frame", 0, 31)
    number = _int(obj, "board", "board.board", 0, 23)
    address = obj.get("address")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise bad("board.address must be a non-blank string")
    if x is not None and y is not None and z is not None:
        return BoardLocator(triad=(x, y, z))
    if cabinet is not None and frame is not None and number is not None:
        return BoardLocator(physical=(cabinet, frame, number))
    if address is not None:
        return BoardLocator(address=address.strip())
    raise bad("at least one way of identifying a board must be given")


def _string(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise bad(f"{key} must be a string")
    return value


def parse_create_job(
    body: Any, *, keepalive_min: float, keepalive_max: float, may_set_owner: bool
) -> CreateJob:
    """Validate a job creation body.

    Parameters
    ----------
    body:
        The decoded JSON.
    keepalive_min, keepalive_max:
        Allowed keepalive interval (seconds).
    may_set_owner:
        Whether the caller is an admin.

    Raises
    ------
    ApiError
        400 with the Java server's message for the first problem found.
    """
    if not isinstance(body, dict):
        raise bad("request body must be a JSON object")
    for key in body:
        if key not in _FIELDS:
            raise bad(f"unrecognized field {key}")
    machine_name = _string(body, "machine-name")
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags)
    ):
        raise bad("tags must be a list of non-blank strings")
    if (machine_name is None) == (tags is None):
        raise bad("either machine-name or tags must be supplied")
    if machine_name is not None and not machine_name.strip():
        raise bad("machine-name, if given, must be non-blank")
    num_boards = _int(body, "num-boards", "num-boards", 1, None)
    width = height = None
    if body.get("dimensions") is not None:
        dims = _object(body["dimensions"], "dimensions", {"width", "height"})
        width = _int(dims, "width", "dimensions.width", 1, 21)
        height = _int(dims, "height", "dimensions.height", 1, 21)
        if width is None or height is None:
            raise bad("dimensions must give width and height")
    board = None if body.get("board") is None else _board(body["board"])
    if num_boards is not None and (width is not None or board is not None):
        raise bad("either specify num-boards or dimensions and/or board")
    if body.get("keepalive-interval") is None:
        raise bad("keepalive-interval is required")
    keepalive = parse_duration(body["keepalive-interval"])
    if not keepalive_min <= keepalive <= keepalive_max:
        raise bad(f"keepalive-interval must be {keepalive_min:g} to {keepalive_max:g} seconds")
    max_dead = _int(body, "max-dead-boards", "max-dead-boards", 0, None) or 0
    owner = _string(body, "owner")
    if owner is not None and owner.strip() and not may_set_owner:
        raise bad("Only admin and NMPI users can specify an owner")
    group = _string(body, "group")
    collab = _string(body, "nmpi-collab")
    if collab is not None and not _COLLAB.match(collab.strip()):
        raise bad("nmpi-collab must be 1 to 128 letters, digits or _.@+- (a letter or digit first)")
    nmpi_job = _int(body, "nmpi-job-id", "nmpi-job-id", 0, None)
    if num_boards is None and width is None and board is None:
        num_boards = 1
    return CreateJob(
        keepalive=keepalive,
        num_boards=num_boards,
        width=width,
        height=height,
        board=board,
        machine_name=None if machine_name is None else machine_name.strip(),
        tags=None if tags is None else tuple(t.strip() for t in tags),
        max_dead_boards=max_dead,
        owner=owner.strip() if owner and owner.strip() else None,
        group=group,
        nmpi_collab=None if collab is None else collab.strip(),
        nmpi_job_id=nmpi_job,
    )
