"""SpallocJob.read_data / write_data / reset_routing: the service does the SCP.

These run against a service driving virtual boards under BMP control (the
fixtures of :mod:`tests.client.proxy_support`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from pyspalloc.client.client import SpallocClient
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.session import SpallocHTTPError
from tests.client.proxy_support import (
    PASSWORD,
    USER,
    ready_job,
    start_test_service,
)

SDRAM = 0x70000000


@pytest.fixture(scope="module")
def memory_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpallocJob]:
    service = start_test_service(tmp_path_factory.mktemp("memory-service"))
    client = SpallocClient(service.url, USER, PASSWORD)
    job = ready_job(client)
    try:
        yield job
    finally:
        try:
            job.destroy("test over")
        finally:
            client.close()
            service.stop()


@pytest.mark.parametrize("size", [1, 4, 256, 70_000])
def test_write_then_read(memory_job: SpallocJob, size: int) -> None:
    data = os.urandom(size)
    memory_job.write_data(0, 0, SDRAM + size, data)
    assert memory_job.read_data(0, 0, SDRAM + size, size) == data


def test_read_from_another_chip_of_the_board(memory_job: SpallocJob) -> None:
    data = os.urandom(1000)
    memory_job.write_data(1, 1, SDRAM, data)
    assert memory_job.read_data(1, 1, SDRAM, len(data)) == data
    assert memory_job.read_data(0, 0, SDRAM, len(data)) != data


def test_reset_routing(memory_job: SpallocJob) -> None:
    memory_job.reset_routing({})

    class DiagnosticFilter:
        filter_word = 0x00FF00FF

    memory_job.reset_routing({12: DiagnosticFilter(), 13: 0x0000FFFF})


def test_memory_of_a_chip_outside_the_job(memory_job: SpallocJob) -> None:
    with pytest.raises(SpallocHTTPError):
        memory_job.read_data(100, 100, SDRAM, 4)


def test_memory_needs_an_allocation(memory_job: Any) -> None:
    other = SpallocClient.open_job_from_database(
        memory_job.session.service_url,
        memory_job.url.replace(f"/{memory_job.job_id}/", "/999999/"),
        *memory_job.session.credentials,
    )
    with pytest.raises(SpallocHTTPError):
        other.read_data(0, 0, SDRAM, 4)


def test_chip_255_255_is_the_root_chip(memory_job: SpallocJob) -> None:
    """(255, 255) is SC&MP's "this board's Ethernet chip": the job's root, for GET and POST."""
    data = os.urandom(600)
    memory_job.write_data(255, 255, SDRAM + 0x10000, data)
    assert memory_job.read_data(0, 0, SDRAM + 0x10000, len(data)) == data
    other = os.urandom(600)
    memory_job.write_data(0, 0, SDRAM + 0x20000, other)
    assert memory_job.read_data(255, 255, SDRAM + 0x20000, len(other)) == other
    with pytest.raises(SpallocHTTPError):  # only the pair is special
        memory_job.read_data(255, 0, SDRAM, 4)
