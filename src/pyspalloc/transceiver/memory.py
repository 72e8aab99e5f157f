"""Reading, writing and filling chip memory over SCP (CMD_READ / CMD_WRITE / CMD_FILL).

Transfers are cut into 256-byte pieces and streamed through
:func:`~pyspalloc.transceiver.engine.scp_stream`, so any size is windowed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Generator, Iterator
from contextlib import closing
from typing import BinaryIO

from pyspalloc.exceptions import (
    SpinnmanGenericProcessException,
    SpinnmanInvalidParameterException,
    SpinnmanIOException,
)
from pyspalloc.transceiver.connections import Connection
from pyspalloc.transceiver.engine import (
    DEFAULT_OPTIONS,
    EngineOptions,
    make_request,
    scp_call,
    scp_stream,
)
from pyspalloc.wire.scp import MAX_SCP_DATA, SCPCommand, SCPRequest, SCPResponse

__all__ = [
    "WriteData",
    "access_type",
    "checksum",
    "fill_memory",
    "read_memory",
    "read_word",
    "write_data",
    "write_memory",
    "write_word",
]

#: Anything :func:`write_memory` accepts as data.
WriteData = bytes | bytearray | memoryview | int | str | BinaryIO

_BYTE, _HALF, _WORD = 0, 1, 2


def access_type(address: int, length: int) -> int:
    """The CMD_READ/WRITE access type: word if both are word-aligned, half if even."""
    if address % 4 == 0 and length % 4 == 0:
        return _WORD
    if address % 2 == 0 and length % 2 == 0:
        return _HALF
    return _BYTE


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The 32-bit sum of ``data`` read as little-endian words (a short tail is zero-padded).

    This is what spinnman's ``write_memory(..., get_sum=True)`` returns.
    """
    view = bytes(data)
    tail = len(view) % 4
    if tail:
        view += bytes(4 - tail)
    words: tuple[int, ...] = struct.unpack(f"<{len(view) // 4}I", view)
    return sum(words) & 0xFFFFFFFF


def _check_range(base_address: int, length: int) -> None:
    if length < 0:
        raise SpinnmanInvalidParameterException("length", length, "must not be negative")
    if not 0 <= base_address <= 0xFFFFFFFF or base_address + length > 0x1_0000_0000:
        raise SpinnmanInvalidParameterException(
            "base_address", base_address, f"range of {length} bytes is outside 32-bit memory"
        )


def read_memory(
    connection: Connection,
    x: int,
    y: int,
    base_address: int,
    length: int,
    cpu: int = 0,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> bytearray:
    """Read ``length`` bytes from ``base_address`` on chip (x, y).

    Raises
    ------
    SpinnmanGenericProcessException
        A piece failed, or the board answered a READ with the wrong number of bytes.
    SpinnmanTimeoutException
        A piece got no reply.
    """
    _check_range(base_address, length)
    result = bytearray(length)
    view = memoryview(result)

    def requests() -> Iterator[SCPRequest]:
        for offset in range(0, length, MAX_SCP_DATA):
            size = min(MAX_SCP_DATA, length - offset)
            address = base_address + offset
            yield make_request(
                connection, x, y, cpu, SCPCommand.READ, address, size, access_type(address, size)
            )

    def store(index: int, response: SCPResponse) -> None:
        offset = index * MAX_SCP_DATA
        size = min(MAX_SCP_DATA, length - offset)
        if len(response.payload) != size:
            error = SpinnmanIOException(
                f"READ of {size} bytes at 0x{base_address + offset:08x} on {x},{y} "
                f"returned {len(response.payload)} bytes"
            )
            raise SpinnmanGenericProcessException(error, x, y, cpu)
        view[offset : offset + size] = response.payload

    scp_stream(
        connection,
        requests(),
        store,
        options,
    )
    return result


def _pieces(data: bytes | bytearray | memoryview) -> Generator[bytes]:
    for offset in range(0, len(data), MAX_SCP_DATA):
        yield bytes(data[offset : offset + MAX_SCP_DATA])


def _stream_pieces(reader: BinaryIO, n_bytes: int) -> Generator[bytes]:
    left = n_bytes
    while left > 0:
        piece = reader.read(min(MAX_SCP_DATA, left))
        if not piece:
            raise SpinnmanIOException(f"data ended {left} bytes short of {n_bytes}")
        left -= len(piece)
        yield bytes(piece)


def _file_pieces(name: str, n_bytes: int) -> Generator[bytes]:
    with open(name, "rb") as reader:
        yield from _stream_pieces(reader, n_bytes)


def write_data(
    data: WriteData, n_bytes: int | None = None, offset: int = 0
) -> tuple[int, Generator[bytes]]:
    """What :func:`write_memory` writes for ``data``, ``n_bytes`` and ``offset``.

    Returns
    -------
    tuple[int, Generator[bytes]]
        The number of bytes, and the bytes in pieces of at most ``MAX_SCP_DATA``, read
        as the pieces are taken (a file is opened when the first one is).

    Raises
    ------
    SpinnmanInvalidParameterException
        ``data`` is a bool, an int outside 32 bits, bytes shorter than ``offset +
        n_bytes``, or a stream without ``n_bytes``.
    """
    if isinstance(data, bool):
        raise SpinnmanInvalidParameterException("data", data, "a bool is not memory data")
    if isinstance(data, int):
        if not -(2**31) <= data <= 0xFFFFFFFF:
            raise SpinnmanInvalidParameterException("data", data, "does not fit in 32 bits")
        return 4, _pieces(struct.pack("<I", data & 0xFFFFFFFF))
    if isinstance(data, bytes | bytearray | memoryview):
        if n_bytes is None:
            n_bytes = len(data) - offset
        if offset < 0 or n_bytes < 0 or offset + n_bytes > len(data):
            raise SpinnmanInvalidParameterException(
                "n_bytes", n_bytes, f"offset {offset} + n_bytes exceeds {len(data)} bytes of data"
            )
        return n_bytes, _pieces(memoryview(data)[offset : offset + n_bytes])
    if isinstance(data, str):
        if n_bytes is None:
            n_bytes = os.stat(data).st_size
        return n_bytes, _file_pieces(data, n_bytes)
    if n_bytes is None:
        raise SpinnmanInvalidParameterException("n_bytes", None, "required when data is a stream")
    return n_bytes, _stream_pieces(data, n_bytes)


def _write_pieces(
    connection: Connection,
    x: int,
    y: int,
    cpu: int,
    base_address: int,
    pieces: Iterator[bytes],
    options: EngineOptions,
    get_sum: bool,
) -> int:
    total = 0
    tail = b""

    def requests() -> Iterator[SCPRequest]:
        nonlocal total, tail
        address = base_address
        for piece in pieces:
            if get_sum:
                joined = tail + piece
                whole = len(joined) - len(joined) % 4
                total = (total + checksum(joined[:whole])) & 0xFFFFFFFF
                tail = joined[whole:]
            yield make_request(
                connection,
                x,
                y,
                cpu,
                SCPCommand.WRITE,
                address,
                len(piece),
                access_type(address, len(piece)),
                piece,
            )
            address += len(piece)

    scp_stream(
        connection,
        requests(),
        lambda index, response: None,
        options,
    )
    if get_sum and tail:
        total = (total + checksum(tail)) & 0xFFFFFFFF
    return total


def write_memory(
    connection: Connection,
    x: int,
    y: int,
    base_address: int,
    data: WriteData,
    *,
    n_bytes: int | None = None,
    offset: int = 0,
    cpu: int = 0,
    get_sum: bool = False,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> tuple[int, int]:
    """Write ``data`` at ``base_address`` on chip (x, y).

    Parameters
    ----------
    data:
        Bytes-like (``data[offset:offset + n_bytes]`` is written; ``n_bytes`` defaults
        to the rest of it); an int (one little-endian word); a file name (``n_bytes``
        defaults to the file size); or a binary stream (``n_bytes`` required, read from
        the current position).
    get_sum:
        Also return the 32-bit little-endian word sum of the data (see :func:`checksum`).

    Returns
    -------
    tuple[int, int]
        Bytes written, and the checksum (0 unless ``get_sum``).
    """
    n_bytes, pieces = write_data(data, n_bytes, offset)
    _check_range(base_address, n_bytes)
    with closing(pieces):  # a file is closed even if the write fails
        result = _write_pieces(connection, x, y, cpu, base_address, pieces, options, get_sum)
    return n_bytes, result


def read_word(
    connection: Connection,
    x: int,
    y: int,
    address: int,
    cpu: int = 0,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> int:
    """Read one little-endian 32-bit word."""
    data = read_memory(connection, x, y, address, 4, cpu, options)
    value: int = struct.unpack("<I", data)[0]
    return value


def write_word(
    connection: Connection,
    x: int,
    y: int,
    address: int,
    value: int,
    cpu: int = 0,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Write one little-endian 32-bit word."""
    write_memory(connection, x, y, address, value, cpu=cpu, options=options)


def fill_memory(
    connection: Connection,
    x: int,
    y: int,
    base_address: int,
    word: int,
    length: int,
    options: EngineOptions = DEFAULT_OPTIONS,
) -> None:
    """Fill ``length`` bytes (a multiple of 4, word-aligned) with the 32-bit ``word``."""
    if base_address % 4 or length % 4:
        raise SpinnmanInvalidParameterException(
            "length", length, "fill needs a word-aligned address and a multiple of 4 bytes"
        )
    _check_range(base_address, length)
    if length:
        scp_call(
            connection,
            make_request(connection, x, y, 0, SCPCommand.FILL, base_address, word, length),
            options,
        )
