"""SpallocTransceiver: SCP through the proxy, memory and routing through REST."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.client.job import SpallocJob
from pyspalloc.client.proxy.connections import SpallocBootConnection, SpallocSCPConnection
from pyspalloc.client.proxy.proxied import SpallocProxiedConnection
from pyspalloc.client.transceiver import SpallocTransceiver, create_job_transceiver
from pyspalloc.exceptions import SpinnmanInvalidParameterException, SpinnmanIOException
from pyspalloc.transceiver import Transceiver
from pyspalloc.transceiver.connections import UDPConnection
from pyspalloc.transceiver.memory import checksum
from tests.client import proxy_support as support

proxy_service = support.proxy_service
proxy_client = support.proxy_client
job = support.job

ADDRESS = 0x60000000


@pytest.fixture(scope="module")
def transceiver(job: SpallocJob) -> Iterator[SpallocTransceiver]:
    made = job.create_transceiver()
    assert isinstance(made, SpallocTransceiver)
    try:
        yield made
    finally:
        made.close()


def test_it_is_a_transceiver_over_proxied_connections(
    transceiver: SpallocTransceiver, job: SpallocJob
) -> None:
    assert isinstance(transceiver, Transceiver)
    assert transceiver.job is job
    assert len(transceiver.connections) == len(job.get_connections())
    assert all(isinstance(c, SpallocSCPConnection) for c in transceiver.connections)
    assert isinstance(transceiver.boot_connection, SpallocBootConnection)
    assert transceiver.boot_connection.channel.port == 54321
    assert transceiver.get_scamp_version().name == "SC&MP"
    assert str(transceiver).startswith("Spalloc Transceiver over")


def test_4mb_through_rest_is_byte_exact(transceiver: SpallocTransceiver) -> None:
    data = os.urandom(4 * 1024 * 1024)
    written, total = transceiver.write_memory(0, 0, ADDRESS, data, get_sum=True)
    assert (written, total) == (len(data), checksum(data))
    assert transceiver.read_memory(0, 0, ADDRESS, len(data)) == data


def test_rest_and_scp_see_the_same_memory(transceiver: SpallocTransceiver) -> None:
    data = os.urandom(1000)
    transceiver.write_memory(0, 0, ADDRESS + 0x10000, data)
    # read back with plain SCP through the proxied connection
    with transceiver._use(transceiver.root_connection) as connection:
        from pyspalloc.transceiver import memory

        assert memory.read_memory(connection, 0, 0, ADDRESS + 0x10000, len(data)) == data


def test_write_memory_forms(transceiver: SpallocTransceiver, tmp_path: Path) -> None:
    base = ADDRESS + 0x20000
    assert transceiver.write_memory(0, 0, base, 0x12345678) == (4, 0)
    assert transceiver.read_memory(0, 0, base, 4) == struct.pack("<I", 0x12345678)

    data = bytes(range(256)) * 3
    assert transceiver.write_memory(0, 0, base, data, offset=10, n_bytes=100) == (100, 0)
    assert transceiver.read_memory(0, 0, base, 100) == data[10:110]

    path = tmp_path / "image.bin"
    path.write_bytes(data)
    assert transceiver.write_memory(0, 0, base, str(path), get_sum=True) == (
        len(data),
        checksum(data),
    )
    assert transceiver.read_memory(0, 0, base, len(data)) == data

    stream = io.BytesIO(data[::-1])
    assert transceiver.write_memory(0, 0, base, stream, n_bytes=7)[0] == 7
    assert transceiver.read_memory(0, 0, base, 7) == data[::-1][:7]

    # an odd-sized write sums with a zero-padded tail
    assert transceiver.write_memory(0, 0, base, b"\x01\x02\x03", get_sum=True) == (
        3,
        0x030201,
    )
    assert transceiver.write_memory(0, 0, base, b"") == (0, 0)
    assert transceiver.read_memory(0, 0, base, 0) == bytearray()


def test_write_memory_rejects_bad_input(transceiver: SpallocTransceiver) -> None:
    with pytest.raises(SpinnmanInvalidParameterException):
        transceiver.write_memory(0, 0, ADDRESS, True)
    with pytest.raises(SpinnmanInvalidParameterException):
        transceiver.write_memory(0, 0, ADDRESS, 1 << 40)
    with pytest.raises(SpinnmanInvalidParameterException):
        transceiver.write_memory(0, 0, ADDRESS, b"abc", offset=2, n_bytes=5)
    with pytest.raises(SpinnmanInvalidParameterException):
        transceiver.write_memory(0, 0, ADDRESS, io.BytesIO(b"abc"))
    with pytest.raises(SpinnmanIOException):
        transceiver.write_memory(0, 0, ADDRESS, io.BytesIO(b"abc"), n_bytes=10)
    with pytest.raises(SpinnmanInvalidParameterException):
        transceiver.read_memory(0, 0, ADDRESS, -1)


def test_reset_routing_goes_through_rest(
    transceiver: SpallocTransceiver, job: SpallocJob, proxy_service: Any
) -> None:
    from pyspalloc.transceiver.router import MulticastRoute

    transceiver.load_multicast_routes(0, 0, [MulticastRoute(0x1000, 0xFFFF0000, 1 << 7, 1)])
    assert transceiver.get_multicast_routes(0, 0)
    transceiver.reset_routing({0: 0x12345678})
    assert transceiver.get_multicast_routes(0, 0) == []


def test_create_job_transceiver_function(job: SpallocJob) -> None:
    made = create_job_transceiver(job)
    try:
        assert made.read_memory(0, 0, ADDRESS, 16) is not None
    finally:
        made.close()
    with pytest.raises(SpinnmanIOException):
        made.get_scamp_version()


def test_ensure_board_is_ready_and_engine_settings(job: SpallocJob) -> None:
    made = SpallocTransceiver(job, ensure_board_is_ready=True, timeout=0.5, retries=3)
    try:
        assert made.options.timeout == 0.5
        assert made.get_scamp_version(0, 0).name == "SC&MP"
    finally:
        made.close()


def test_proxied_connections_get_a_wider_window(
    transceiver: SpallocTransceiver, job: SpallocJob
) -> None:
    assert SpallocProxiedConnection.preferred_window == 32
    assert transceiver.options.window == 32
    narrow = SpallocTransceiver(job, window=4)
    try:
        assert narrow.options.window == 4
    finally:
        narrow.close()
    with UDPConnection("127.1.0.1", 17893) as udp:
        assert Transceiver(udp).options.window == 8
        assert Transceiver(udp, window=16).options.window == 16


def test_scp_bulk_through_the_proxy_with_the_wide_window(transceiver: SpallocTransceiver) -> None:
    """SCP (not REST) memory through the proxied channel, burst after burst."""
    for _ in range(3):
        data = os.urandom(300_000)
        Transceiver.write_memory(transceiver, 0, 0, ADDRESS, data)
        assert Transceiver.read_memory(transceiver, 0, 0, ADDRESS, len(data)) == data
        assert transceiver.read_memory(0, 0, ADDRESS, len(data)) == data  # and by REST
