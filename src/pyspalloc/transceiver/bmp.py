"""Board Management Processor operations: power and FPGA registers (link control).

A frame's BMP speaks SCP on UDP 17893 at its own IP. Requests go to chip (0, 0) with the
board number (0..23 within the frame) as the cpu. Every function takes either an open
connection to the BMP or the BMP's IP address.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from pyspalloc.exceptions import SpinnmanInvalidParameterException
from pyspalloc.geometry import (
    FPGA_BANK_STRIDE,
    FPGA_FLAG_REGISTER,
    FPGA_STOP_REGISTER,
    Direction,
    fpga_for,
)
from pyspalloc.transceiver.connections import Connection, UDPConnection
from pyspalloc.transceiver.discovery import get_version
from pyspalloc.transceiver.engine import EngineOptions, make_request, scp_call
from pyspalloc.transceiver.machine_info import VersionInfo
from pyspalloc.wire.consts import SCP_PORT
from pyspalloc.wire.scp import SCPCommand

__all__ = [
    "BMPTarget",
    "bmp_connection",
    "check_fpga_ids",
    "link_enabled",
    "power_off",
    "power_on",
    "read_bmp_version",
    "read_fpga_register",
    "set_link_enabled",
    "write_fpga_register",
]

#: Seconds per BMP request attempt (power switching gets its own timeout).
BMP_TIMEOUT = 0.5
#: Retries for BMP requests.
BMP_RETRIES = 3
#: FPGAs per board.
N_FPGAS = 3
#: Boards per frame.
N_BOARDS = 24


def bmp_connection(bmp_ip: str) -> UDPConnection:
    """A UDP connection to the BMP at ``bmp_ip``:17893."""
    return UDPConnection(bmp_ip, SCP_PORT)


#: A connection to a BMP, or the BMP's IP address (a connection is opened and closed).
BMPTarget = Connection | str


@contextmanager
def _open(target: BMPTarget) -> Iterator[Connection]:
    if isinstance(target, str):
        with bmp_connection(target) as connection:
            yield connection
    else:
        yield target


def _check_board(board: int) -> None:
    if not 0 <= board < N_BOARDS:
        raise SpinnmanInvalidParameterException("board", board, f"must be in 0..{N_BOARDS - 1}")


def _check_fpga(fpga: int) -> None:
    if not 0 <= fpga < N_FPGAS:
        raise SpinnmanInvalidParameterException("fpga", fpga, "must be 0, 1 or 2")


def read_bmp_version(
    connection: BMPTarget, board: int = 0, *, timeout: float = BMP_TIMEOUT
) -> VersionInfo:
    """CMD_VER of the BMP (``name`` is ``"BC&MP"``)."""
    _check_board(board)
    options = EngineOptions(1, timeout, BMP_RETRIES).once()
    with _open(connection) as link:
        return get_version(link, 0, 0, board, options)


def _power(
    connection: BMPTarget, boards: list[int], on: bool, delay: float, timeout: float, retries: int
) -> None:
    if not boards:
        return
    mask = 0
    for board in boards:
        _check_board(board)
        mask |= 1 << board
    arg1 = (int(delay * 1000) << 16) | int(on)
    with _open(connection) as link:
        # to the frame's root BMP (board 0) whichever boards are switched: as Java and
        # spinnman, since some BMPs ignore power commands sent to another board
        request = make_request(link, 0, 0, 0, SCPCommand.BMP_POWER, arg1, mask)
        # Switching power takes the BMP a while: resend only after the full timeout.
        scp_call(link, request, EngineOptions(1, timeout, retries).once())


def power_on(
    connection: BMPTarget,
    boards: list[int],
    *,
    timeout: float = 10.0,
    delay: float = 0.0,
    retries: int = 1,
) -> None:
    """Switch ``boards`` (numbers within the BMP's frame) on; they come up unbooted."""
    _power(connection, boards, True, delay, timeout, retries)


def power_off(
    connection: BMPTarget,
    boards: list[int],
    *,
    timeout: float = 10.0,
    delay: float = 0.0,
    retries: int = 1,
) -> None:
    """Switch ``boards`` off."""
    _power(connection, boards, False, delay, timeout, retries)


def read_fpga_register(
    connection: BMPTarget,
    fpga: int,
    register: int,
    board: int,
    *,
    timeout: float = BMP_TIMEOUT,
) -> int:
    """Read a 32-bit FPGA register of ``board`` (CMD_LINK_READ)."""
    _check_board(board)
    _check_fpga(fpga)
    with _open(connection) as link:
        request = make_request(
            link, 0, 0, board, SCPCommand.LINK_READ, register & ~3 & 0xFFFFFFFF, 4, fpga
        )
        reply = scp_call(link, request, EngineOptions(1, timeout, BMP_RETRIES))
    value: int = struct.unpack("<I", reply.payload[:4])[0]
    return value


def write_fpga_register(
    connection: BMPTarget,
    fpga: int,
    register: int,
    value: int,
    board: int,
    *,
    timeout: float = BMP_TIMEOUT,
) -> None:
    """Write a 32-bit FPGA register of ``board`` (CMD_LINK_WRITE)."""
    _check_board(board)
    _check_fpga(fpga)
    with _open(connection) as link:
        request = make_request(
            link,
            0,
            0,
            board,
            SCPCommand.LINK_WRITE,
            register & ~3 & 0xFFFFFFFF,
            4,
            fpga,
            struct.pack("<I", value & 0xFFFFFFFF),
        )
        scp_call(link, request, EngineOptions(1, timeout, BMP_RETRIES))


def set_link_enabled(
    connection: BMPTarget,
    board: int,
    link: Direction | tuple[int, int],
    enabled: bool,
    *,
    timeout: float = BMP_TIMEOUT,
) -> None:
    """Enable or stop one board-to-board link via its FPGA STOP register.

    Parameters
    ----------
    link:
        A :class:`~pyspalloc.geometry.Direction`, or an ``(fpga, bank)`` pair.
    """
    fpga, bank = fpga_for(link) if isinstance(link, Direction) else link
    address = bank * FPGA_BANK_STRIDE + FPGA_STOP_REGISTER
    write_fpga_register(connection, fpga, address, 0 if enabled else 1, board, timeout=timeout)


def link_enabled(
    connection: BMPTarget,
    board: int,
    link: Direction | tuple[int, int],
    *,
    timeout: float = BMP_TIMEOUT,
) -> bool:
    """Whether a board-to-board link is running (its STOP register reads 0)."""
    fpga, bank = fpga_for(link) if isinstance(link, Direction) else link
    address = bank * FPGA_BANK_STRIDE + FPGA_STOP_REGISTER
    return read_fpga_register(connection, fpga, address, board, timeout=timeout) == 0


def check_fpga_ids(connection: BMPTarget, board: int, *, timeout: float = BMP_TIMEOUT) -> bool:
    """Whether each FPGA's FLAG register reports its own number (the board is wired up)."""
    return all(
        read_fpga_register(connection, fpga, FPGA_FLAG_REGISTER, board, timeout=timeout) & 3 == fpga
        for fpga in range(N_FPGAS)
    )
