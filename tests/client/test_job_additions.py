"""The spinnman 1!7.4.1 additions to SpallocJob, against the real service.

``wait_until_ready()`` gives up on a job that cannot start, ``destroy()`` is idempotent
and ``repr()`` says where the job is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pyspalloc import SpallocBoardUnavailableException, SpallocClient, SpallocState
from pyspalloc.client import rest_job as job_module
from pyspalloc.client.session import Session
from pyspalloc.exceptions import SpallocException, SpinnmanTimeoutException
from tests.client.test_job import fill_machine
from tests.conftest import USERS

ALICE_PW = USERS["alice"][0]


@pytest.fixture
def client(service: Any) -> Iterator[SpallocClient]:
    with SpallocClient(service.url, "alice", ALICE_PW, queue_time=2.0) as spalloc:
        yield spalloc


@pytest.fixture
def short_board_wait(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(job_module, "BOARD_QUEUE_TIME", 1.5)
    return 1.5


def test_board_unavailable_is_a_spalloc_exception() -> None:
    assert issubclass(SpallocBoardUnavailableException, SpallocException)
    from pyspalloc import exceptions

    assert exceptions.SpallocBoardUnavailableException is SpallocBoardUnavailableException


def test_a_queued_board_job_gives_up(client: SpallocClient, short_board_wait: float) -> None:
    big = fill_machine(client)
    wanted = client.create_job_board(triad=(1, 0, 2))
    assert wanted.get_state() == SpallocState.QUEUED
    started = time.monotonic()
    with pytest.raises(SpallocBoardUnavailableException, match=r"triad=1,0,2 are not available"):
        wanted.wait_until_ready()
    assert short_board_wait - 0.1 <= time.monotonic() - started < short_board_wait + 5
    wanted.destroy()
    big.destroy()


def test_a_queued_job_gives_up_after_the_queue_time(client: SpallocClient) -> None:
    big = fill_machine(client)
    queued = client.create_job()
    started = time.monotonic()
    with pytest.raises(SpallocBoardUnavailableException, match="remained QUEUED for 2 s"):
        queued.wait_until_ready()
    assert 1.9 <= time.monotonic() - started < 7
    queued.destroy()
    big.destroy()


def test_explicit_limits_keep_the_old_behaviour(client: SpallocClient) -> None:
    big = fill_machine(client)
    queued = client.create_job_board(triad=(1, 0, 2))
    with pytest.raises(SpinnmanTimeoutException):
        queued.wait_until_ready(timeout=1.0)
    with pytest.raises(SpinnmanTimeoutException):
        queued.wait_until_ready(n_retries=0)
    queued.destroy()
    big.destroy()


def test_a_board_freed_in_time_becomes_ready(
    client: SpallocClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_module, "BOARD_QUEUE_TIME", 20.0)
    big = fill_machine(client)
    wanted = client.create_job_board(triad=(1, 0, 2))
    assert wanted.get_state() == SpallocState.QUEUED
    big.destroy()
    wanted.wait_until_ready()
    assert wanted.get_state() == SpallocState.READY
    wanted.destroy()


def test_no_queue_time_waits_until_ready(service: Any) -> None:
    with SpallocClient(service.url, "alice", ALICE_PW, queue_time=None) as spalloc:
        job = spalloc.create_job()
        job.wait_until_ready()
        assert job.get_state() == SpallocState.READY


def test_destroy_twice_sends_one_request(
    client: SpallocClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = client.create_job()
    job.wait_until_ready(timeout=30)
    deletes: list[str] = []
    real_delete = Session.delete

    def counting_delete(self: Session, url: str, timeout: float = 10, **kwargs: Any) -> Any:
        deletes.append(url)
        return real_delete(self, url, timeout, **kwargs)

    monkeypatch.setattr(Session, "delete", counting_delete)
    job.destroy("first")
    job.destroy("second")
    with job:
        pass  # the context manager's destroy is quiet too
    assert deletes == [job.url]  # type: ignore[attr-defined]
    assert job.get_state() == SpallocState.DESTROYED
    description = job.get_state_json()  # type: ignore[attr-defined]
    assert description.get("reason") == "first"


def test_repr_shows_url_state_and_root(client: SpallocClient) -> None:
    job = client.create_job()
    assert repr(job).startswith(f"SpallocJob({job.url}")  # type: ignore[attr-defined]
    job.wait_until_ready(timeout=30)
    root = job.get_root_host()
    assert root is not None
    assert repr(job) == f"SpallocJob({job.url} READY on {root})"  # type: ignore[attr-defined]
    job.destroy()
    assert repr(job) == f"SpallocJob({job.url} DESTROYED on {root})"  # type: ignore[attr-defined]
