"""What the command-line tools need of the client, against the real service: a typed job
description, power, a one-shot keepalive, where-is of a job chip, a machine by name, and
the one keepalive default."""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pyspalloc import AbstractSpallocClient, SpallocClient
from pyspalloc.client import JobAllocation, JobDescription, SpallocHTTPError, SpallocJob
from pyspalloc.client.client import KEEPALIVE, SEED_ABSTRACT_KEEPALIVE
from tests.conftest import USERS


@pytest.fixture
def client(service: Any) -> Iterator[SpallocClient]:
    with SpallocClient(service.url, "alice", USERS["alice"][0]) as spalloc:
        yield spalloc


@pytest.fixture
def job(client: SpallocClient) -> Iterator[SpallocJob]:
    created = client.create_job(3)
    created.wait_until_ready(timeout=30)
    yield created
    created.destroy()


def _until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_describe_a_ready_job(job: SpallocJob) -> None:
    seen = job.describe()
    assert isinstance(seen, JobDescription)
    assert (seen.id, seen.url, seen.state, seen.owner) == (job.job_id, job.url, "READY", "alice")
    assert seen.machine == "spin24" and seen.num_boards == 3
    assert {(x, y) for x, y, _ in seen.connections} == {(0, 0), (8, 4), (4, 8)}
    assert len(seen.triads) == 3 and seen.depth == 3
    assert seen.root_host == job.get_root_host()
    assert seen.start_time and seen.keepalive_time and seen.request is not None
    assert seen.power is None  # not asked for
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen.state = "QUEUED"  # type: ignore[misc]
    bare = job.describe(allocation=False)
    assert (bare.state, bare.connections, bare.machine) == ("READY", (), None)
    assert job.describe(power=True).power is True


def test_allocation_is_typed(job: SpallocJob) -> None:
    allocation = job.get_allocation()
    assert isinstance(allocation, JobAllocation)
    assert allocation.machine == "spin24" and (allocation.width, allocation.height) == (1, 1)
    assert {(x, y): h for x, y, h in allocation.connections} == job.get_connections()


def test_power_off_and_on(job: SpallocJob) -> None:
    assert job.get_power() is True
    job.set_power(False)
    _until(lambda: job.describe(allocation=False).state == "READY" and job.get_power() is False)
    job.set_power(True)
    _until(lambda: job.describe(allocation=False).state == "READY" and job.get_power() is True)
    assert job.describe(power=True).power is True


def test_one_keepalive(client: SpallocClient, job: SpallocJob) -> None:
    listed = client.get_job(str(job.job_id))  # a handle that sends no keepalives itself
    job.close()  # stop the creator's keepalive thread
    before = listed.describe(allocation=False).keepalive_time
    time.sleep(1.2)
    listed.send_keepalive()
    after = listed.describe(allocation=False)
    assert after.keepalive_time is not None and before is not None
    assert after.keepalive_time > before
    assert after.keepalive_host == "127.0.0.1"


def test_where_is_a_job_chip(job: SpallocJob) -> None:
    found = job.where_is_chip(8, 4)
    assert found is not None
    assert found["job-id"] == job.job_id and found["board-chip"] == [8, 4]
    assert job.where_is_machine(8, 4) == tuple(found["physical-board-coordinates"])
    assert job.where_is_chip(200, 200) is None


def test_no_such_job(client: SpallocClient) -> None:
    with pytest.raises(SpallocHTTPError) as caught:
        client.get_job(987654).describe()
    assert caught.value.status == 404


def test_machine_by_name(client: SpallocClient) -> None:
    machine = client.get_machine("spin24")
    assert machine is not None and (machine.name, machine.width, machine.height) == ("spin24", 4, 2)
    found = machine.where_is_logical(0, 0, 0)
    assert found is not None and found["logical-board-coordinates"] == [0, 0, 0]
    assert client.get_machine("no-such-machine") is None


def test_one_keepalive_default(client: SpallocClient) -> None:
    created: Any = client.create_job()
    try:
        asked = created.get_state_json()["original-request"]["keepalive-interval"]
        assert float(asked) == KEEPALIVE == 120
    finally:
        created.destroy()
    for name in ("create_job", "create_job_rect", "create_job_board", "create_job_rect_at_board"):
        ours = inspect.signature(getattr(SpallocClient, name)).parameters["keepalive"]
        seed = inspect.signature(getattr(AbstractSpallocClient, name)).parameters["keepalive"]
        assert (ours.default, seed.default) == (KEEPALIVE, SEED_ABSTRACT_KEEPALIVE)


def test_description_from_json() -> None:
    state = {
        "state": "POWER",
        "owner": "bob",
        "start-time": "2026-01-01T00:00:00Z",
        "keepalive-host": "10.0.0.1",
        "keep-alive-time": "2026-01-01T00:01:00Z",
        "original-request": {"num-boards": 1},
    }
    seen = JobDescription.from_json("http://h/spalloc/srv/spalloc/jobs/42/", state)
    assert (seen.id, seen.state, seen.owner, seen.keepalive_host) == (
        42,
        "POWER",
        "bob",
        "10.0.0.1",
    )
    assert seen.keepalive_time == "2026-01-01T00:01:00Z" and seen.is_live
    allocation = JobAllocation.from_json(
        {
            "machine-name": "m",
            "width": 1,
            "height": 1,
            "depth": 1,
            "connections": [[[0, 0], "10.0.0.9"]],
            "boards": [[2, 1, 0]],
        }
    )
    full = seen.with_allocation(allocation)
    assert (full.machine, full.connections, full.triads) == (
        "m",
        ((0, 0, "10.0.0.9"),),
        ((2, 1, 0),),
    )
    assert full.root_host == "10.0.0.9" and full.num_boards == 1
    assert seen.with_allocation(None) is seen
    assert JobDescription.from_json("http://h/jobs/x/", {}).state == "UNKNOWN"
