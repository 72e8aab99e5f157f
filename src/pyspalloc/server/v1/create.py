"""``create_job``: turning an old-protocol request into an ordinary job request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspalloc.server.api.requests import BoardLocator, CreateJob
from pyspalloc.server.v1.arguments import integer, number, optional_integer, optional_text, text
from pyspalloc.server.v1.codec import V1Error

#: keyword arguments of ``create_job`` (those the old server takes)
CREATE_KWARGS = frozenset(
    {
        "owner", "keepalive", "machine", "tags", "min_ratio", "max_dead_boards",
        "max_dead_links", "require_torus",
    }
)  # fmt: skip

_MAX_SIZE = 1000


@dataclass(frozen=True)
class V1Create:
    """A checked ``create_job`` call."""

    request: CreateJob
    #: the wire owner (recorded in the job's request; the job belongs to the v1 user)
    owner: str
    #: what the client sent, as echoed back by ``list_jobs``
    args: list[int]
    kwargs: dict[str, Any]
    #: ``max_dead_boards`` was null or absent: any number of dead boards (the request's
    #: ``max_dead_boards`` is then the most the shape allows)
    any_dead: bool = False


def _printable(owner: str) -> bool:
    return bool(owner) and all(" " <= ch <= "~" for ch in owner)


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or len(value) > 16:
        raise V1Error("tags must be a string or a list of 1 to 16 strings")
    return tuple(text(t, "tags", 128).strip() for t in value)


def _keepalive(value: Any, low: float, high: float) -> float:
    """The keepalive interval: null means the longest allowed, short ones are raised."""
    if value is None:
        return high
    seconds = number(value, "keepalive")
    if seconds > high:
        raise V1Error(f"keepalive must be at most {high:g} seconds (or null)")
    return max(seconds, low)


def _any_dead(args: list[int]) -> int:
    """The most boards of a shape that may be dead with one alive."""
    if len(args) == 1:
        return max(args[0] - 1, 0)
    if len(args) == 2:
        return max(3 * args[0] * args[1] - 1, 1)
    return 0


def parse_create(
    args: list[Any], kwargs: dict[str, Any], keepalive_min: float, keepalive_max: float
) -> V1Create:
    """Check a ``create_job`` call: ``()``/``(n)``/``(w, h)``/``(x, y, z)`` and its kwargs.

    Raises
    ------
    V1Error
        On the first problem found.
    """
    for key in kwargs:
        if key not in CREATE_KWARGS:
            raise V1Error(f"create_job() got an unexpected keyword argument {key!r}")
    if len(args) > 3:
        raise V1Error("create_job() takes 0 to 3 positional arguments (n, w h or x y z)")
    owner = optional_text(kwargs.get("owner"), "owner", 128)
    if owner is None:
        raise V1Error("owner must be specified for all jobs.")
    if not _printable(owner):
        raise V1Error("owner must be printable ASCII text")
    numbers = [integer(a, "job dimension", 0, _MAX_SIZE) for a in args]
    machine = optional_text(kwargs.get("machine"), "machine", 128)
    tags_value = kwargs.get("tags")
    if machine is not None and tags_value is not None:
        raise V1Error("Only one of machine and tags may be specified.")
    tags: tuple[str, ...] | None = None if machine is not None else ("default",)
    if tags_value is not None:
        tags = _tags(tags_value)
    for name in ("min_ratio",):
        if kwargs.get(name) is not None:
            number(kwargs[name], name)
    optional_integer(kwargs.get("max_dead_links"), "max_dead_links")
    torus = kwargs.get("require_torus")
    if torus is not None and not isinstance(torus, bool):
        raise V1Error("require_torus must be true, false or null")
    dead = optional_integer(kwargs.get("max_dead_boards"), "max_dead_boards")
    keepalive = _keepalive(kwargs.get("keepalive", 60.0), keepalive_min, keepalive_max)
    num_boards = width = height = None
    board = None
    if len(numbers) <= 1:
        num_boards = numbers[0] if numbers else 1
        if num_boards < 1:
            raise V1Error("the number of boards must be at least 1")
    elif len(numbers) == 2:
        width, height = numbers
        if width < 1 or height < 1:
            raise V1Error("width and height must be at least 1")
    else:
        board = BoardLocator(triad=(numbers[0], numbers[1], numbers[2]))
        if numbers[2] > 2:
            raise V1Error("z must be 0, 1 or 2")
    request = CreateJob(
        keepalive=keepalive,
        num_boards=num_boards,
        width=width,
        height=height,
        board=board,
        machine_name=machine,
        tags=tags,
        max_dead_boards=_any_dead(numbers) if dead is None else dead,
        owner=None,
        group=None,
    )
    echoed = {k: v for k, v in kwargs.items() if k in CREATE_KWARGS}
    return V1Create(request, owner, numbers, echoed, any_dead=dead is None)
