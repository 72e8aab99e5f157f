"""Checkers of setting values read from a TOML file: each turns a TOML value into the
Python value of a :class:`~pyspalloc.server.config.ServiceConfig` field, or raises
:class:`ValueError` saying what the value must be (the caller names the key and the value).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

#: a checker: TOML value -> field value; ValueError("must be ...") if it will not do
Checker = Callable[[object], object]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def seconds(value: object) -> float:
    """A duration: a number of seconds, 0 or more."""
    if not _is_number(value) or float(value) < 0:  # type: ignore[arg-type]
        raise ValueError("must be a number of seconds (0 or more)")
    return float(value)  # type: ignore[arg-type]


def number(value: object) -> float:
    """Any number."""
    if not _is_number(value):
        raise ValueError("must be a number")
    return float(value)  # type: ignore[arg-type]


def count(least: int) -> Checker:
    """A whole number, ``least`` or more."""

    def check(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"must be a whole number, {least} or more")
        return value

    return check


def port(value: object) -> int:
    """A TCP port (0: any free port)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ValueError("must be a port number (0 to 65535)")
    return value


def text(value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def any_text(value: object) -> str:
    """A string (may be empty)."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def path(value: object) -> Path:
    """A file or directory path."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a path (a non-empty string)")
    return Path(value).expanduser()


def flag(value: object) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def choice(*names: str) -> Checker:
    """One of ``names``."""

    def check(value: object) -> str:
        if value not in names:
            raise ValueError("must be one of " + ", ".join(f'"{n}"' for n in names))
        return str(value)

    return check


def texts(value: object) -> list[str]:
    """A list of non-empty strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of non-empty strings")
    return list(value)


def text_tuple(value: object) -> tuple[str, ...]:
    """A list of non-empty strings, kept as a tuple."""
    return tuple(texts(value))


def ipv4(value: object) -> str:
    """An IPv4 address."""
    try:
        return str(ipaddress.IPv4Address(value if isinstance(value, str) else ""))
    except ValueError:
        raise ValueError('must be an IPv4 address such as "127.1.0.0"') from None


def networks(value: object) -> tuple[str, ...]:
    """A list of addresses or networks (``10.0.0.0/8``, ``::1``)."""
    items = value if isinstance(value, list) else None
    try:
        if items is None:
            raise ValueError
        for item in items:
            ipaddress.ip_network(item if isinstance(item, str) else "", strict=False)
    except ValueError:
        raise ValueError('must be a list of addresses or networks such as "10.0.0.0/8"') from None
    return tuple(str(item) for item in items)


def or_none(check: Checker, word: str) -> Checker:
    """What ``check`` accepts, or the string ``word`` (TOML has no null) meaning None."""

    def either(value: object) -> object:
        if value == word:
            return None
        try:
            return check(value)
        except ValueError as error:
            raise ValueError(f'{error}, or "{word}"') from None

    return either


def hidden(_: object) -> str:
    """A secret, as ``config show`` prints it."""
    return "(hidden)"


def without_password(value: object) -> str:
    """A database URL with its password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(str(value)).render_as_string(hide_password=True)
    except ArgumentError:
        return str(value)


def shown(value: object) -> str:
    """A value as TOML would spell it, for messages and ``config show``."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)
