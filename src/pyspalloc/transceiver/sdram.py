"""The SDRAM heap of a chip (CMD_ALLOC) and the clock drift in its system variables."""

from __future__ import annotations

import struct

from pyspalloc.exceptions import SpinnmanInvalidParameterException
from pyspalloc.transceiver.connections import Connection
from pyspalloc.transceiver.engine import DEFAULT_OPTIONS, EngineOptions, make_request, scp_call
from pyspalloc.transceiver.memory import read_memory
from pyspalloc.wire.consts import SV_BASE, SV_CLOCK_DRIFT
from pyspalloc.wire.scp import SCPCommand

__all__ = ["free_sdram", "free_sdram_by_app_id", "get_clock_drift", "malloc_sdram"]

_ALLOC_SDRAM, _FREE_SDRAM, _FREE_SDRAM_ID = 0, 1, 2
#: Makes a retransmitted allocation with the same tag return the same block.
_TAG_RETRY = 4


def malloc_sdram(
    connection: Connection,
    x: int,
    y: int,
    size: int,
    app_id: int,
    tag: int = 0,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> int:
    """Allocate ``size`` bytes of chip (x, y)'s SDRAM for ``app_id``; return the address."""
    # the retry-tag flag only with a tag, as spinnman sends it (tag 0 means no tag)
    arg1 = ((_TAG_RETRY << 16) if tag else 0) | (app_id << 8) | _ALLOC_SDRAM
    request = make_request(connection, x, y, 0, SCPCommand.ALLOC, arg1, size, tag)
    # Not idempotent (with tag 0): resend only after the full timeout.
    reply = scp_call(
        connection,
        request,
        options.once(),
    )
    (address,) = reply.args(1)
    if address == 0:
        raise SpinnmanInvalidParameterException(
            "size", size, f"could not allocate that much SDRAM on {x},{y}"
        )
    return int(address)


def free_sdram(
    connection: Connection,
    x: int,
    y: int,
    base_address: int,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Free the block at ``base_address`` on chip (x, y)."""
    request = make_request(connection, x, y, 0, SCPCommand.ALLOC, _FREE_SDRAM, base_address)
    scp_call(connection, request, options)


def free_sdram_by_app_id(
    connection: Connection, x: int, y: int, app_id: int, options: EngineOptions = DEFAULT_OPTIONS
) -> int:
    """Free every block of ``app_id`` on chip (x, y); return how many were freed."""
    request = make_request(connection, x, y, 0, SCPCommand.ALLOC, (app_id << 8) | _FREE_SDRAM_ID)
    reply = scp_call(connection, request, options)
    return int(reply.args(1)[0])


def get_clock_drift(
    connection: Connection, x: int, y: int, options: EngineOptions = DEFAULT_OPTIONS
) -> float:
    """Chip (x, y)'s clock drift (SV ``clock_drift``, signed fixed point / 2**17)."""
    data = read_memory(connection, x, y, SV_BASE + SV_CLOCK_DRIFT, 4, options=options)
    raw: int = struct.unpack("<i", data)[0]
    return raw / (1 << 17)
