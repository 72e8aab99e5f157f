"""Memory operations against a scripted responder holding a little RAM."""

from __future__ import annotations

import io
import os
import random
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyspalloc.exceptions import SpinnmanGenericProcessException, SpinnmanInvalidParameterException
from pyspalloc.transceiver import memory
from pyspalloc.transceiver.connections import UDPConnection
from pyspalloc.transceiver.engine import EngineOptions
from pyspalloc.wire.scp import SCPCommand, SCPRequest, SCPResponse, SCPResult, reply_to

from .responder import Responder

BASE = 0x60000000
SIZE = 1 << 20


class Ram:
    """A 1 MiB RAM at 0x60000000, answering READ, WRITE and FILL; optionally lossy."""

    def __init__(self, loss: float = 0.0, short_reads: bool = False) -> None:
        self.data = bytearray(SIZE)
        self.loss = loss
        self.short_reads = short_reads
        self.random = random.Random(1)
        self.lock = threading.Lock()
        self.access_types: list[int] = []

    def __call__(self, request: SCPRequest, seen: int) -> list[SCPResponse]:
        with self.lock:
            if self.random.random() < self.loss:
                return []
        start = request.arg1 - BASE
        if request.command == SCPCommand.READ:
            self.access_types.append(request.arg3)
            payload = bytes(self.data[start : start + request.arg2])
            if self.short_reads:
                payload = payload[:-1]
            return [reply_to(request, SCPResult.RC_OK, payload, 0, 0)]
        if request.command == SCPCommand.WRITE:
            self.access_types.append(request.arg3)
            self.data[start : start + request.arg2] = request.data
            return [reply_to(request, SCPResult.RC_OK, b"", 0, 0)]
        if request.command == SCPCommand.FILL:
            word = struct.pack("<I", request.arg2)
            self.data[start : start + request.arg3] = word * (request.arg3 // 4)
            return [reply_to(request, SCPResult.RC_OK, b"", 0, 0)]
        return [reply_to(request, SCPResult.RC_CMD, b"", 0, 0)]


@pytest.fixture
def ram() -> Ram:
    return Ram()


@pytest.fixture
def link(ram: Ram) -> Iterator[UDPConnection]:
    responder = Responder(ram, host="127.1.250.2")
    connection = UDPConnection(responder.host, responder.port)
    yield connection
    connection.close()
    responder.close()


def test_round_trip_unaligned(ram: Ram, link: UDPConnection) -> None:
    data = os.urandom(100_003)
    written, total = memory.write_memory(link, 0, 0, BASE + 3, data, get_sum=True)
    assert written == len(data)
    assert total == memory.checksum(data)
    assert ram.data[3 : 3 + len(data)] == data
    assert memory.read_memory(link, 0, 0, BASE + 3, len(data)) == data
    assert memory.read_memory(link, 0, 0, BASE + 1001, 5) == data[998:1003]


def test_access_types_follow_alignment(ram: Ram, link: UDPConnection) -> None:
    memory.read_memory(link, 0, 0, BASE, 512)
    memory.read_memory(link, 0, 0, BASE + 2, 2)
    memory.read_memory(link, 0, 0, BASE + 1, 3)
    assert ram.access_types == [2, 2, 1, 0]


def test_offset_and_n_bytes(ram: Ram, link: UDPConnection) -> None:
    data = bytes(range(256)) * 4
    assert memory.write_memory(link, 0, 0, BASE, data, offset=10, n_bytes=500)[0] == 500
    assert ram.data[:500] == data[10:510]
    with pytest.raises(SpinnmanInvalidParameterException):
        memory.write_memory(link, 0, 0, BASE, data, offset=600, n_bytes=500)


def test_int_file_and_stream(ram: Ram, link: UDPConnection, tmp_path: Path) -> None:
    assert memory.write_memory(link, 0, 0, BASE, 0xDEADBEEF, get_sum=True) == (4, 0xDEADBEEF)
    assert memory.read_word(link, 0, 0, BASE) == 0xDEADBEEF
    memory.write_word(link, 0, 0, BASE + 4, 7)
    assert memory.read_word(link, 0, 0, BASE + 4) == 7
    data = os.urandom(5000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert memory.write_memory(link, 0, 0, BASE + 8, str(path), get_sum=True) == (
        5000,
        memory.checksum(data),
    )
    assert ram.data[8:5008] == data
    stream = io.BytesIO(b"xx" + data)
    stream.read(2)
    written, total = memory.write_memory(
        link, 0, 0, BASE + 10000, stream, n_bytes=4999, get_sum=True
    )
    assert (written, total) == (4999, memory.checksum(data[:4999]))
    assert ram.data[10000:14999] == data[:4999]
    with pytest.raises(SpinnmanInvalidParameterException):
        memory.write_memory(link, 0, 0, BASE, io.BytesIO(data))


def test_fill(ram: Ram, link: UDPConnection) -> None:
    memory.fill_memory(link, 0, 0, BASE + 64, 0x01020304, 4096)
    assert ram.data[64 : 64 + 4096] == b"\x04\x03\x02\x01" * 1024
    with pytest.raises(SpinnmanInvalidParameterException):
        memory.fill_memory(link, 0, 0, BASE + 2, 0, 8)


def test_short_read_reply_is_an_error(ram: Ram, link: UDPConnection) -> None:
    ram.short_reads = True
    with pytest.raises(SpinnmanGenericProcessException):
        memory.read_memory(link, 0, 0, BASE, 300)


def test_lossy_round_trip(ram: Ram, link: UDPConnection) -> None:
    ram.loss = 0.1
    options = EngineOptions(timeout=0.02, retries=20)
    data = os.urandom(64 * 1024)
    memory.write_memory(link, 0, 0, BASE, data, options=options)
    assert memory.read_memory(link, 0, 0, BASE, len(data), options=options) == data
