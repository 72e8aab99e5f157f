"""SpallocJob against the real service: states, waits, keepalive, destroy, restarts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyspalloc import SpallocClient, SpallocState
from pyspalloc.client.rest_job import _SpallocJob
from pyspalloc.exceptions import SpallocException, SpinnmanTimeoutException
from pyspalloc.server.store import Store
from tests.conftest import USERS
from tests.support.http_client import make_token
from tests.support.waiting import eventually

ALICE_PW = USERS["alice"][0]


@pytest.fixture
def client(service: Any) -> Iterator[SpallocClient]:
    with SpallocClient(service.url, "alice", ALICE_PW) as spalloc:
        yield spalloc


def fill_machine(client: SpallocClient) -> Any:
    """Take all 24 boards of spin24; return the job."""
    big = client.create_job_rect(4, 2)
    big.wait_until_ready(timeout=30)
    return big


def restart(make_service: Callable[..., Any], service: Any, **overrides: Any) -> Any:
    """Stop the service, forget its sessions, start it again on the same port and DB."""
    service.stop()
    store = Store(service.config.database)
    store.purge_sessions(-3600)
    store.close()
    return make_service(port=service.port, **overrides)


# ---------------------------------------------------------------- states and waits


def test_job_goes_ready(client: SpallocClient) -> None:
    job = client.create_job()
    assert job.get_state() in (SpallocState.QUEUED, SpallocState.POWER, SpallocState.READY)
    job.wait_until_ready(timeout=30)
    assert job.get_state() == SpallocState.READY
    assert job.get_state(wait_for_change=False) == SpallocState.READY
    job.destroy()


def test_wait_for_state_change_honours_its_timeout(client: SpallocClient) -> None:
    big = fill_machine(client)
    queued = client.create_job()
    assert queued.get_state() == SpallocState.QUEUED
    started = time.monotonic()
    assert queued.wait_for_state_change(SpallocState.QUEUED, timeout=1.5) == SpallocState.QUEUED
    assert 1.4 <= time.monotonic() - started < 5
    big.destroy()
    queued.destroy()


def test_wait_for_state_change_sees_the_change(client: SpallocClient) -> None:
    big = fill_machine(client)
    queued = client.create_job()
    timer = threading.Timer(1.0, big.destroy)
    timer.start()
    started = time.monotonic()
    state = queued.wait_for_state_change(SpallocState.QUEUED, timeout=40)
    timer.join()
    assert state in (SpallocState.POWER, SpallocState.READY)
    assert time.monotonic() - started < 20
    queued.wait_until_ready(timeout=30)
    queued.destroy()


def test_wait_for_state_change_returns_at_once_for_destroyed(client: SpallocClient) -> None:
    job = client.create_job()
    job.destroy()
    started = time.monotonic()
    assert job.wait_for_state_change(SpallocState.READY, timeout=30) == SpallocState.DESTROYED
    assert job.wait_for_state_change(SpallocState.DESTROYED) == SpallocState.DESTROYED
    assert time.monotonic() - started < 5


def test_wait_until_ready_times_out(client: SpallocClient) -> None:
    big = fill_machine(client)
    queued = client.create_job()
    started = time.monotonic()
    with pytest.raises(SpinnmanTimeoutException):
        queued.wait_until_ready(timeout=1.5)
    assert time.monotonic() - started < 5
    with pytest.raises(SpinnmanTimeoutException):
        queued.wait_until_ready(n_retries=0)
    big.destroy()
    queued.destroy()


def test_wait_until_ready_raises_when_destroyed(client: SpallocClient) -> None:
    big = fill_machine(client)
    queued = client.create_job()
    killer = threading.Timer(1.0, lambda: queued.destroy("changed my mind"))
    killer.start()
    with pytest.raises(SpallocException, match="changed my mind"):
        queued.wait_until_ready(timeout=40)
    killer.join()
    big.destroy()


def test_where_is_machine(client: SpallocClient) -> None:
    job = client.create_job_board(physical=(0, 0, 4))
    job.wait_until_ready(timeout=30)
    assert job.where_is_machine(0, 0) == (0, 0, 4)
    assert job.where_is_machine(7, 3) == (0, 0, 4)
    assert job.where_is_machine(200, 200) is None
    job.destroy()


def test_queued_job_has_no_connections(client: SpallocClient) -> None:
    big = fill_machine(client)
    queued = client.create_job()
    assert queued.get_connections() == {}
    assert queued.get_root_host() is None
    assert queued.where_is_machine(0, 0) is None
    big.destroy()
    queued.destroy()


# ---------------------------------------------------------------- destroy


def test_destroy_records_the_reason_and_stops_keepalive(client: SpallocClient) -> None:
    job: Any = client.create_job()
    assert job.keepalive_active
    job.destroy("all done")
    assert not job.keepalive_active
    state = job.get_state_json()
    assert state["state"] == "DESTROYED"
    assert state["reason"] == "all done"


def test_context_manager_destroys(client: SpallocClient) -> None:
    with client.create_job() as job:
        job.wait_until_ready(timeout=30)
    assert job.get_state() == SpallocState.DESTROYED
    assert job.get_state_json()["reason"] == "finished"  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError), client.create_job() as failing:
        raise RuntimeError("boom")
    assert "boom" in failing.get_state_json()["reason"]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- keepalive


@pytest.fixture
def fast_service(make_service: Callable[..., Any]) -> Any:
    """A service that allows short keepalives and checks expiry often."""
    return make_service(keepalive_min=1.0, expiry_period=0.25)


def test_keepalive_keeps_created_jobs_alive(fast_service: Any) -> None:
    with SpallocClient(fast_service.url, "alice", ALICE_PW) as spalloc:
        kept: Any = spalloc.create_job(keepalive=2)
        abandoned: Any = spalloc.create_job(keepalive=2)
        abandoned.close()  # stop its keepalives; the job itself is left alone
        looked_up: Any = spalloc.get_job(str(abandoned.job_id))
        assert not looked_up.keepalive_active
        eventually(lambda: abandoned.get_state() == SpallocState.DESTROYED, 15)
        assert abandoned.get_state_json()["reason"] == "keepalive expired"
        time.sleep(3)  # more than the keepalive interval
        assert kept.get_state() == SpallocState.READY
        assert kept._keepalive.sent >= 2
        assert not kept.keepalive_failed
        kept.destroy()


def test_keepalive_stops_when_the_service_destroys_the_job(fast_service: Any) -> None:
    with SpallocClient(fast_service.url, "alice", ALICE_PW) as spalloc:
        job: Any = spalloc.create_job(keepalive=2)
        spalloc.get_job(str(job.job_id)).destroy("killed elsewhere")
        eventually(lambda: not job.keepalive_active, 10)
        assert "killed elsewhere" in str(job.keepalive_error)


def test_keepalive_failure_is_reported_then_recovers(
    make_service: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service()
    spalloc = SpallocClient(service.url, "alice", ALICE_PW)
    job: Any = spalloc.create_job(keepalive=60)
    job._keepalive.period = 0.5  # keep the job's 60 s interval, but send often
    eventually(lambda: job._keepalive.sent >= 1, 10)
    caplog.set_level(logging.WARNING, logger="pyspalloc.client.keepalive")
    service.stop()
    eventually(lambda: job.keepalive_failed, 20)
    assert job.keepalive_error is not None
    assert any("failed 3 times" in r.getMessage() for r in caplog.records)
    assert job.keepalive_active  # still trying
    service = restart(make_service, service)
    eventually(lambda: not job.keepalive_failed, 20)  # renewed and recovered
    assert job.get_state() == SpallocState.READY
    job.destroy()
    spalloc.close()


# ---------------------------------------------------------------- restarts


def test_restart_under_a_live_client(make_service: Callable[..., Any]) -> None:
    service = make_service()
    spalloc = SpallocClient(service.url, "alice", ALICE_PW)
    job: Any = spalloc.create_job()
    job.close()  # no keepalive traffic: the next call below is the first after restart
    job.wait_until_ready(timeout=30)
    old_cookie = spalloc.session.credentials[0]["JSESSIONID"]
    service = restart(make_service, service)
    assert "spin24" in spalloc.list_machines()  # GET: 401, renew, retry
    assert spalloc.session.credentials[0]["JSESSIONID"] != old_cookie
    assert job.get_state() == SpallocState.READY
    service = restart(make_service, service)
    job.destroy()  # DELETE: CSRF 403 on the dead session, renew, retry
    assert job.get_state() == SpallocState.DESTROYED
    spalloc.close()


def test_bearer_client_survives_a_restart(make_service: Callable[..., Any]) -> None:
    service = make_service()
    spalloc = SpallocClient(service.url, bearer_token=make_token(service, "bob"))
    service = restart(make_service, service)
    job = spalloc.create_job()
    job.wait_until_ready(timeout=30)
    job.destroy()
    spalloc.close()


# ---------------------------------------------------------------- stored credentials


def _split(config: Any) -> tuple[str, str, dict[str, str], dict[str, str]]:
    cookies = {name: value for (kind, name), value in config.items() if kind == "COOKIE"}
    headers = {name: value for (kind, name), value in config.items() if kind == "HEADER"}
    return config["SPALLOC", "service uri"], config["SPALLOC", "job uri"], cookies, headers


def test_session_credentials_for_db(client: SpallocClient, service: Any) -> None:
    job = client.create_job()
    config = job.get_session_credentials_for_db()
    assert set(config) == {
        ("SPALLOC", "service uri"),
        ("SPALLOC", "job uri"),
        ("COOKIE", "JSESSIONID"),
        ("HEADER", "X-CSRF-TOKEN"),
    }
    assert config["SPALLOC", "service uri"] == service.url
    assert config["SPALLOC", "job uri"] == job.url  # type: ignore[attr-defined]
    job.destroy()


def test_bearer_tokens_are_not_written_to_the_db(service: Any) -> None:
    with SpallocClient(service.url, bearer_token=make_token(service, "bob")) as spalloc:
        job = spalloc.create_job()
        config = job.get_session_credentials_for_db()
        assert all(name.lower() != "authorization" for _, name in config)
        job.destroy()


def test_open_job_from_database(client: SpallocClient) -> None:
    job = client.create_job_board(triad=(0, 1, 2))
    job.wait_until_ready(timeout=30)
    url, job_url, cookies, headers = _split(job.get_session_credentials_for_db())
    reopened: Any = SpallocClient.open_job_from_database(url, job_url, cookies, headers)
    assert isinstance(reopened, _SpallocJob)
    assert not reopened.keepalive_active
    assert reopened.get_state() == SpallocState.READY
    assert reopened.get_connections() == job.get_connections()
    # without the stored CSRF header, writes still work (the token is fetched)
    without_csrf = SpallocClient.open_job_from_database(url, job_url, cookies, {})
    without_csrf.destroy("from the database")
    assert job.get_state() == SpallocState.DESTROYED


def test_open_job_from_database_needs_urls() -> None:
    with pytest.raises(SpallocException):
        SpallocClient.open_job_from_database("", "http://h/jobs/1", {}, {})


def test_waits_do_not_busy_poll_a_service_that_answers_at_once(
    make_service: Callable[..., Any],
) -> None:
    service = make_service(wait_timeout=0.02)  # long polls end almost at once
    with SpallocClient(service.url, "alice", ALICE_PW) as spalloc:
        big = fill_machine(spalloc)
        queued: Any = spalloc.create_job()
        session = queued.session
        calls: list[str] = []
        original = session._raw

        def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(method)
            return original(method, url, *args, **kwargs)

        session._raw = counting
        started = time.monotonic()
        assert queued.wait_for_state_change(SpallocState.QUEUED, timeout=4) == SpallocState.QUEUED
        assert 3.9 <= time.monotonic() - started < 8
        assert len(calls) <= 15  # back-off to 5 s between polls, not hundreds of polls
        session._raw = original
        big.destroy()
        queued.destroy()


def test_wait_until_ready_rides_out_a_service_restart(make_service: Callable[..., Any]) -> None:
    service = make_service()
    spalloc = SpallocClient(service.url, "alice", ALICE_PW)
    big = fill_machine(spalloc)
    queued = spalloc.create_job()
    restarted: list[Any] = []

    def bounce() -> None:
        time.sleep(1.0)
        restarted.append(restart(make_service, service))
        time.sleep(1.0)
        big.destroy()  # renews the session on the restarted service

    bouncer = threading.Thread(target=bounce)
    bouncer.start()
    queued.wait_until_ready(timeout=60)
    bouncer.join(30)
    assert restarted
    assert queued.get_state() == SpallocState.READY
    queued.destroy()
    spalloc.close()
