"""The v1 wire format: one JSON object per line each way.

A request is ``{"command": NAME, "args": [...], "kwargs": {...}}``; a reply is
``{"return": VALUE}`` or ``{"exception": MESSAGE}``; a notification is
``{"jobs_changed": [ids]}`` or ``{"machines_changed": [names]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class V1Error(Exception):
    """A problem reported to the client as ``{"exception": message}``."""


@dataclass(frozen=True)
class Request:
    """A decoded request line."""

    command: str
    args: list[Any]
    kwargs: dict[str, Any]


_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": "))


def decode_request(line: bytes, max_args: int) -> Request:
    """Decode one request line (without its newline).

    Raises
    ------
    V1Error
        If the line is not a JSON object naming a command, or has too many arguments.
    """
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise V1Error("malformed request: not a line of JSON") from None
    if not isinstance(obj, dict):
        raise V1Error("malformed request: not a JSON object")
    command = obj.get("command")
    if not isinstance(command, str):
        raise V1Error("malformed request: no command name given")
    args = obj.get("args", [])
    kwargs = obj.get("kwargs", {})
    if args is None:
        args = []
    if kwargs is None:
        kwargs = {}
    if not isinstance(args, list):
        raise V1Error("malformed request: args must be a JSON array")
    if not isinstance(kwargs, dict):
        raise V1Error("malformed request: kwargs must be a JSON object")
    if len(args) > max_args or len(kwargs) > max_args:
        raise V1Error(f"too many arguments (at most {max_args} args and {max_args} kwargs)")
    kwargs.pop("client", None)  # the old server drops it too
    return Request(command, args, kwargs)


def encode(message: dict[str, Any]) -> bytes:
    """Encode a reply or notification as one line."""
    return _ENCODER.encode(message).encode("ascii") + b"\n"


def reply(value: Any) -> bytes:
    """A ``return`` line."""
    return encode({"return": value})


def exception(message: str) -> bytes:
    """An ``exception`` line."""
    return encode({"exception": message})
