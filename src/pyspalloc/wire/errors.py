"""The one error raised by every decoder in :mod:`pyspalloc.wire`."""

from __future__ import annotations

import struct


class WireFormatError(ValueError):
    """Bytes that do not form a valid message, or a value that cannot be encoded."""


def unpack_from(fmt: str, data: bytes, offset: int, what: str) -> tuple[int, ...]:
    """Unpack ``fmt`` at ``offset``, turning a short buffer into a WireFormatError.

    Parameters
    ----------
    fmt:
        A :mod:`struct` format.
    data:
        The buffer.
    offset:
        Where to start.
    what:
        The message kind, for the error text.
    """
    need = offset + struct.calcsize(fmt)
    if len(data) < need:
        raise WireFormatError(f"{what} too short: {len(data)} bytes, need at least {need}")
    return struct.unpack_from(fmt, data, offset)


def check_range(name: str, value: int, low: int, high: int) -> int:
    """Return ``value`` if ``low <= value <= high``, else raise WireFormatError."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise WireFormatError(f"{name} must be an integer in {low}..{high}, not {value!r}")
    return value
