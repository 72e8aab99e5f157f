"""Booting a board: our own boot image, the flood-fill packets, and waiting for SC&MP."""

from __future__ import annotations

import struct
import time

from pyspalloc.exceptions import (
    SpinnmanException,
    SpinnmanInvalidParameterException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
)
from pyspalloc.transceiver.connections import Connection, UDPConnection
from pyspalloc.transceiver.discovery import get_version
from pyspalloc.transceiver.engine import EngineOptions
from pyspalloc.transceiver.machine_info import VersionInfo
from pyspalloc.wire.boot import SV_IN_IMAGE, boot_messages
from pyspalloc.wire.consts import BOOT_PORT, SV_BOOT_SIG, SV_UNIX_TIME

__all__ = ["BOOT_IMAGE_SIZE", "boot_board", "boot_image", "wait_until_booted"]

#: Size of the image we send (the same number of blocks as SC&MP's own image).
BOOT_IMAGE_SIZE = 29868
#: Pause between boot packets, in seconds.
DEFAULT_BOOT_DELAY = 0.001

# (SV offset, struct format, value) of the system variables the host sets at boot.
_SV_FIELDS: tuple[tuple[int, str, int], ...] = (
    (0x0A, "B", 5),  # hw_ver
    (0x0C, "B", 4),  # p2pb_repeats
    (0x0D, "B", 4),  # p2p_sql
    (0x0E, "B", 0x33),  # clk_div
    (0x24, "H", 200),  # cpu_clk (MHz)
    (0x26, "H", 130),  # mem_clk (MHz)
    (0x28, "B", 0x3F),  # forward
    (0x2A, "B", 200),  # peek_time
    (0x2B, "B", 1),  # led_period
    (0x2C, "B", 50),  # netinit_bc_wait
    (0x30, "I", 1),  # led0
    (0x40, "B", 1),  # root_chip
    (0x41, "B", 7),  # num_buf
    (0x42, "B", 20),  # boot_delay
    (0x48, "I", 1024),  # sysram_heap (words)
    (0x4C, "I", 0),  # sdram_heap
    (0x50, "I", 16384),  # iobuf_size
    (0x54, "I", 8 * 1024 * 1024),  # sdram_bufs (size)
    (0x58, "I", 32768),  # sysbuf_size (words)
    (0x65, "B", 0x3F),  # link_en
)


def boot_image(size: int = BOOT_IMAGE_SIZE, now: int | None = None) -> bytes:
    """A boot image: zeros, with the first 128 bytes of the SV struct at bytes 384..511.

    Parameters
    ----------
    size:
        Image size in bytes (a multiple of 4, at least 512).
    now:
        The unix time to record as ``unix_time`` and ``boot_sig`` (default: now).
    """
    if size < SV_IN_IMAGE.stop or size % 4:
        raise SpinnmanInvalidParameterException("size", size, "must be a multiple of 4, >= 512")
    stamp = int(time.time()) if now is None else now
    image = bytearray(size)
    base = SV_IN_IMAGE.start
    for offset, fmt, value in (
        *_SV_FIELDS,
        (SV_UNIX_TIME, "I", stamp),
        (SV_BOOT_SIG, "I", stamp),
    ):
        struct.pack_into("<" + fmt, image, base + offset, value)
    return bytes(image)


def boot_board(
    connection_or_ip: Connection | str,
    *,
    delay: float = DEFAULT_BOOT_DELAY,
    image: bytes | None = None,
) -> None:
    """Send the boot packets (START, BLOCKs, CONTROL) to a board.

    Parameters
    ----------
    connection_or_ip:
        A connection to the board's boot port, or the board's IP (port 54321 is used).
    delay:
        Seconds to pause after each packet.
    image:
        The image to send (default: :func:`boot_image`).
    """
    packets = [message.to_bytes() for message in boot_messages(image or boot_image())]
    if isinstance(connection_or_ip, str):
        with UDPConnection(connection_or_ip, BOOT_PORT) as connection:
            _send_all(connection, packets, delay)
    else:
        _send_all(connection_or_ip, packets, delay)


def _send_all(connection: Connection, packets: list[bytes], delay: float) -> None:
    for packet in packets:
        connection.send(packet)
        if delay > 0:
            time.sleep(delay)


def wait_until_booted(
    connection: Connection,
    timeout: float = 10.0,
    *,
    poll_interval: float = 0.1,
    attempt_timeout: float = 0.5,
) -> VersionInfo:
    """Poll CMD_VER on (255, 255) until the board answers with real coordinates.

    Raises
    ------
    SpinnmanTimeoutException
        The board did not become ready within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: SpinnmanException | None = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        wait = max(0.01, min(attempt_timeout, left))
        options = EngineOptions(window=1, timeout=wait, retries=0).once()
        try:
            version = get_version(connection, 255, 255, 0, options)
        except (SpinnmanTimeoutException, SpinnmanIOException) as error:
            last = error
            if isinstance(error, SpinnmanIOException):
                time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
            continue
        except SpinnmanException as error:
            last = error
            time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
            continue
        if (version.x, version.y) != (255, 255):
            return version
        time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
    raise SpinnmanTimeoutException(
        "the board to boot", timeout, f"board not ready after {timeout} s (last: {last})"
    )
