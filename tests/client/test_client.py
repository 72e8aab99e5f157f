"""SpallocClient against the real service: login, machines, job creation, listing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pyspalloc import SpallocClient, SpallocState
from pyspalloc.client.rest_job import _SpallocJob
from pyspalloc.client.session import SpallocHTTPError
from pyspalloc.exceptions import SpallocException, SpinnmanInvalidParameterException
from tests.conftest import USERS
from tests.support.http_client import make_token

ALICE_PW = USERS["alice"][0]


@pytest.fixture
def client(service: Any) -> Iterator[SpallocClient]:
    with SpallocClient(service.url, "alice", ALICE_PW) as spalloc:
        yield spalloc


def ready(job: Any) -> Any:
    job.wait_until_ready(timeout=30)
    return job


# ---------------------------------------------------------------- login


def test_version_and_service_refs(client: SpallocClient, service: Any) -> None:
    assert client.version == (7, 4, 2)
    assert str(client.version) == "7.4.2"
    assert client._jobs_url.startswith(service.url)  # http kept, not forced to https


def test_credentials_in_the_url(service: Any) -> None:
    url = service.url.replace("http://", f"http://alice:{ALICE_PW}@")
    with SpallocClient(url) as spalloc:
        assert "spin24" in spalloc.list_machines()


def test_credentials_from_the_environment(service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPALLOC_USER", "bob")
    monkeypatch.setenv("SPALLOC_PASSWORD", USERS["bob"][0])
    with SpallocClient(service.url) as spalloc:
        job = spalloc.create_job()
        assert job.get_state() in (SpallocState.QUEUED, SpallocState.POWER, SpallocState.READY)
        job.destroy()


def test_bearer_token_client(service: Any) -> None:
    with SpallocClient(service.url, bearer_token=make_token(service, "bob")) as spalloc:
        job = ready(spalloc.create_job())
        assert job.get_root_host() is not None
        job.destroy()
        assert job.get_state() == SpallocState.DESTROYED


def test_bad_password_raises(service: Any) -> None:
    with pytest.raises(SpallocException, match="Unable to login"):
        SpallocClient(service.url, "alice", "wrong")


def test_no_credentials_raises(service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPALLOC_USER", raising=False)
    monkeypatch.delenv("SPALLOC_PASSWORD", raising=False)
    with pytest.raises(SpinnmanInvalidParameterException):
        SpallocClient(service.url)


def test_closed_client_refuses_work(service: Any) -> None:
    spalloc = SpallocClient(service.url, "alice", ALICE_PW)
    job = spalloc.create_job()
    assert job.keepalive_active
    spalloc.close()
    assert not job.keepalive_active
    with pytest.raises(SpallocException, match="closed"):
        spalloc.list_machines()


# ---------------------------------------------------------------- machines


def test_list_machines(client: SpallocClient) -> None:
    machines = client.list_machines()
    assert list(machines) == ["spin24"]
    machine = machines["spin24"]
    assert machine.name == "spin24"
    assert machine.tags == frozenset({"default"})
    assert (machine.width, machine.height) == (4, 2)
    assert machine.area == (4, 2)
    assert machine.dead_boards == []
    assert machine.dead_links == []


def test_machine_where_is(client: SpallocClient) -> None:
    machine: Any = client.list_machines()["spin24"]
    logical = machine.where_is_logical(1, 0, 1)
    assert logical["physical-board-coordinates"] == [0, 0, 4]
    physical = machine.where_is_physical(0, 0, 13)
    assert physical["logical-board-coordinates"] == [0, 1, 1]
    assert machine.where_is_ip("127.1.0.17")["logical-board-coordinates"] == [0, 0, 2]
    assert machine.where_is_chip(8, 4)["logical-board-coordinates"] == [0, 0, 1]
    assert machine.where_is_logical(9, 9, 0) is None


# ---------------------------------------------------------------- job creation


def test_create_job(client: SpallocClient) -> None:
    job = ready(client.create_job(1))
    assert job.get_state() == SpallocState.READY
    connections = job.get_connections()
    assert len(connections) == 1
    assert job.get_root_host() == connections[(0, 0)]
    assert job.where_is_machine(0, 0) is not None
    job.destroy()


def test_create_job_on_a_named_machine(client: SpallocClient) -> None:
    job = ready(client.create_job(3, machine_name="spin24"))
    assert len(job.get_connections()) == 3
    job.destroy()


def test_create_job_rect(client: SpallocClient) -> None:
    job = ready(client.create_job_rect(2, 1))
    connections = job.get_connections()
    assert len(connections) == 6
    assert {(0, 0), (8, 4), (4, 8), (12, 0), (20, 4), (16, 8)} == set(connections)
    job.destroy()


@pytest.mark.parametrize(
    ("where", "ip"),
    [
        ({"triad": (1, 0, 1)}, "127.1.0.33"),
        ({"physical": (0, 0, 13)}, "127.1.0.105"),
        ({"ip_address": "127.1.0.17"}, "127.1.0.17"),
    ],
)
def test_create_job_board(client: SpallocClient, where: dict[str, Any], ip: str) -> None:
    job = ready(client.create_job_board(**where))
    assert job.get_connections() == {(0, 0): ip}
    job.destroy()


def test_create_job_board_needs_a_board(client: SpallocClient) -> None:
    with pytest.raises(SpinnmanInvalidParameterException):
        client.create_job_board()


def test_create_job_rect_at_board(client: SpallocClient) -> None:
    job = ready(client.create_job_rect_at_board(1, 1, triad=(1, 1, 0)))
    connections = job.get_connections()
    assert len(connections) == 3
    assert job.where_is_machine(0, 0) == (0, 0, 15)  # triad (1, 1, 0)
    job.destroy()


def test_impossible_request_is_refused(client: SpallocClient) -> None:
    with pytest.raises(SpallocHTTPError) as caught:
        client.create_job_board(triad=(7, 7, 0))
    assert caught.value.status == 400


def test_created_jobs_request_their_keepalive(client: SpallocClient) -> None:
    job: Any = client.create_job(keepalive=60)
    original = job.get_state_json()["original-request"]
    assert float(original["keepalive-interval"]) == 60
    assert job._keepalive.period == 30
    job.destroy()


# ---------------------------------------------------------------- looking jobs up


def test_get_job(client: SpallocClient) -> None:
    created: Any = ready(client.create_job())
    found: Any = client.get_job(str(created.job_id))
    assert found.url == created.url
    assert "//" not in found.url.split("://", 1)[1]
    assert not found.keepalive_active  # only created jobs are kept alive
    assert found.get_state() == SpallocState.READY
    created.destroy()


def test_list_jobs_follows_pages(client: SpallocClient) -> None:
    client.list_page_size = 2
    created = [client.create_job() for _ in range(5)]
    listed = list(client.list_jobs())
    assert all(isinstance(job, _SpallocJob) for job in listed)
    urls = [job.url for job in listed]  # type: ignore[attr-defined]
    assert sorted(urls) == sorted(job.url for job in created)  # type: ignore[attr-defined]
    assert not any(job.keepalive_active for job in listed)
    created[0].destroy()
    assert len(list(client.list_jobs())) == 4
    assert len(list(client.list_jobs(deleted=True))) == 5
    for job in created[1:]:
        job.destroy()


def test_https_service_with_its_own_certificate(
    make_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = make_service(self_signed=True)
    assert service.url.startswith("https://")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", service.cert_file)
    with SpallocClient(service.url, "alice", ALICE_PW) as spalloc:
        job: Any = ready(spalloc.create_job())
        assert job.url.startswith("https://")
        assert job.get_root_host() is not None
        job.destroy()


def test_untrusted_certificate_is_an_io_error(make_service: Any) -> None:
    from pyspalloc.exceptions import SpinnmanIOException

    service = make_service(self_signed=True)
    with pytest.raises(SpinnmanIOException):
        SpallocClient(service.url, "alice", ALICE_PW)
