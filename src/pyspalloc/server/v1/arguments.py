"""Binding and checking the arguments of v1 commands (as Python would bind a call)."""

from __future__ import annotations

from typing import Any

from pyspalloc.server.v1.codec import V1Error

#: marks a parameter without a default
REQUIRED = object()

#: the largest integer accepted where the database stores one
INT_MAX = 2**31 - 1


def bind(
    command: str, params: tuple[tuple[str, Any], ...], args: list[Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind positional and keyword arguments to ``params`` ((name, default) pairs).

    Raises
    ------
    V1Error
        For too many positional arguments, an unknown or repeated keyword, or a
        missing argument, worded like Python's own ``TypeError``.
    """
    if len(args) > len(params):
        raise V1Error(
            f"{command}() takes {len(params)} positional arguments but {len(args)} were given"
        )
    bound: dict[str, Any] = {}
    for (name, _), value in zip(params, args, strict=False):
        bound[name] = value
    names = {name for name, _ in params}
    for key, value in kwargs.items():
        if key not in names:
            raise V1Error(f"{command}() got an unexpected keyword argument {key!r}")
        if key in bound:
            raise V1Error(f"{command}() got multiple values for argument {key!r}")
        bound[key] = value
    for name, default in params:
        if name not in bound:
            if default is REQUIRED:
                raise V1Error(f"{command}() missing required argument: {name!r}")
            bound[name] = default
    return bound


def integer(value: Any, name: str, low: int = 0, high: int = INT_MAX) -> int:
    """Check an integer argument (JSON numbers with no fraction; no booleans)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise V1Error(f"{name} must be an integer")
    if not low <= value <= high:
        raise V1Error(f"{name} must be {low} to {high}")
    return value


def optional_integer(value: Any, name: str, low: int = 0, high: int = INT_MAX) -> int | None:
    """Like :func:`integer`, also accepting null."""
    return None if value is None else integer(value, name, low, high)


def number(value: Any, name: str) -> float:
    """Check a (finite) number argument."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise V1Error(f"{name} must be a number")
    if abs(value) > 1e12:
        raise V1Error(f"{name} is out of range")
    return float(value)


def text(value: Any, name: str, max_length: int = 256) -> str:
    """Check a string argument of bounded length."""
    if not isinstance(value, str):
        raise V1Error(f"{name} must be a string")
    if len(value) > max_length:
        raise V1Error(f"{name} must be at most {max_length} characters")
    return value


def optional_text(value: Any, name: str, max_length: int = 256) -> str | None:
    """Like :func:`text`, also accepting null."""
    return None if value is None else text(value, name, max_length)
