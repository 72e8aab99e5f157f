"""Allocation from the environment: settings parsed from variables, JupyterHub's token
service on loopback, and ``allocate_job`` against the real service."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pyspalloc import AllocationSettings, SpallocClient, SpallocState, allocate_job
from pyspalloc.client.rest_job import QUEUE_TIME
from pyspalloc.exceptions import (
    SpallocBoardUnavailableException,
    SpallocException,
    SpinnmanInvalidParameterException,
)
from pyspalloc.server.store import JobState, Store
from tests.client.test_job import fill_machine
from tests.conftest import USERS
from tests.support.http_client import make_token

ALICE_PW = USERS["alice"][0]


def test_nothing_set_gives_the_defaults() -> None:
    settings = AllocationSettings.from_environment({})
    assert settings == AllocationSettings()
    assert settings.queue_time == QUEUE_TIME


def test_every_variable_is_read() -> None:
    settings = AllocationSettings.from_environment(
        {
            "SPALLOC_SERVER": "https://host/spalloc/",
            "SPALLOC_USER": "alice",
            "SPALLOC_PASSWORD": "pw",
            "OIDC_BEARER_TOKEN": "tok",
            "SPALLOC_GROUP": "g",
            "SPALLOC_COLLAB": "c",
            "NMPI_JOB_ID": "17",
            "NMPI_USER": "nu",
            "SPALLOC_BOARDS": "3",
            "SPALLOC_WIDTH": "2",
            "SPALLOC_HEIGHT": "1",
            "SPALLOC_TRIAD": "1, 0, 2",
            "SPALLOC_MACHINE": "spin24",
            "SPALLOC_MAX_DEAD_BOARDS": "1",
            "SPALLOC_QUEUE_TIME": "12.5",
        }
    )
    assert settings == AllocationSettings(
        service_url="https://host/spalloc/",
        username="alice",
        password="pw",
        bearer_token="tok",
        group="g",
        collab="c",
        nmpi_job=17,
        nmpi_user="nu",
        num_boards=3,
        width=2,
        height=1,
        triad=(1, 0, 2),
        machine="spin24",
        max_dead_boards=1,
        queue_time=12.5,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("NMPI_JOB_ID", "abc"), ("SPALLOC_BOARDS", "1.5"), ("SPALLOC_TRIAD", "1,2"),
     ("SPALLOC_PHYSICAL", "a,b,c"), ("SPALLOC_QUEUE_TIME", "soon")],
)  # fmt: skip
def test_a_bad_variable_is_named(name: str, value: str) -> None:
    with pytest.raises(SpinnmanInvalidParameterException, match=name):
        AllocationSettings.from_environment({name: value})


def test_no_server_is_a_clear_error() -> None:
    with pytest.raises(SpinnmanInvalidParameterException, match="SPALLOC_SERVER"):
        AllocationSettings().connect()


def test_conflicting_boards_are_refused(service: Any) -> None:
    settings = AllocationSettings(
        service_url=service.url, username="alice", password=ALICE_PW,
        triad=(0, 0, 0), ip_address="127.1.0.1",
    )  # fmt: skip
    with settings.connect() as client, pytest.raises(SpinnmanInvalidParameterException):
        settings.create_job(client)
    half = AllocationSettings(service_url=service.url, username="alice", password=ALICE_PW,
                              width=2)  # fmt: skip
    with half.connect() as client, pytest.raises(SpinnmanInvalidParameterException):
        half.create_job(client)


# ---------------------------------------------------------------- JupyterHub's token service


class _Hub(BaseHTTPRequestHandler):
    answer: dict[str, Any] = {}
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps(type(self).answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[tuple[str, int]]:
    _Hub.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _hub_env(hub: tuple[str, int]) -> dict[str, str]:
    host, port = hub
    return {
        "JUPYTERHUB_API_TOKEN": "hub-secret",
        "JUPYTERHUB_SERVICE_HOST": host,
        "JUPYTERHUB_SERVICE_PORT": str(port),
        "OIDC_BEARER_TOKEN": "ignored-when-the-hub-answers",
    }


def test_the_hub_gives_the_bearer_token(hub: tuple[str, int]) -> None:
    _Hub.answer = {"access_token": "from-the-hub"}
    settings = AllocationSettings.from_environment(_hub_env(hub))
    assert settings.bearer_token == "from-the-hub"
    assert _Hub.seen == [("/services/access-token-service/access-token", "Token hub-secret")]


def test_a_hub_without_a_token_is_a_clear_error(hub: tuple[str, int]) -> None:
    _Hub.answer = {"error": "nope"}
    with pytest.raises(SpallocException, match="JupyterHub gave no access token"):
        AllocationSettings.from_environment(_hub_env(hub))


def test_a_silent_hub_is_a_clear_error(port: int) -> None:
    env = {"JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_SERVICE_HOST": "127.0.0.1",
           "JUPYTERHUB_SERVICE_PORT": str(port)}  # fmt: skip
    with pytest.raises(SpallocException, match="JupyterHub gave no access token"):
        AllocationSettings.from_environment(env)


# ---------------------------------------------------------------- allocate_job, for real


def _state_seen_by_admin(service: Any, job_url: str) -> SpallocState:
    with SpallocClient(service.url, "root", USERS["root"][0]) as admin:
        found = [j for j in admin.list_jobs(deleted=True) if j.url == job_url]  # type: ignore[attr-defined]
        assert len(found) == 1
        return found[0].get_state()


def test_allocate_job_from_the_environment(service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPALLOC_SERVER", service.url)
    monkeypatch.setenv("SPALLOC_USER", "alice")
    monkeypatch.setenv("SPALLOC_PASSWORD", ALICE_PW)
    monkeypatch.setenv("SPALLOC_WIDTH", "1")
    monkeypatch.setenv("SPALLOC_HEIGHT", "1")
    with allocate_job() as job:
        assert job.get_state() == SpallocState.READY
        assert len(job.get_connections()) == 3  # one triad: three boards
        url = job.url  # type: ignore[attr-defined]
    assert _state_seen_by_admin(service, url) == SpallocState.DESTROYED


def test_allocate_job_with_a_bearer_token_and_a_specific_board(service: Any) -> None:
    token = make_token(service, "alice")
    settings = AllocationSettings(service_url=service.url, bearer_token=token)
    with allocate_job(settings, physical=(0, 0, 7)) as job:
        assert job.where_is_machine(0, 0) == (0, 0, 7)
        url = job.url  # type: ignore[attr-defined]
    assert _state_seen_by_admin(service, url) == SpallocState.DESTROYED


def test_allocate_job_gives_up_on_a_busy_board_and_destroys_it(service: Any) -> None:
    settings = AllocationSettings(
        service_url=service.url, username="alice", password=ALICE_PW, queue_time=1.0
    )
    with settings.connect() as client:
        big = fill_machine(client)
        with pytest.raises(SpallocBoardUnavailableException), allocate_job(settings) as job:
            pytest.fail(f"{job} should not have become ready")
        big.destroy()
    store = Store(service.config.database)
    try:
        assert store.jobs_in_states(JobState.QUEUED) == []  # the context manager destroyed it
    finally:
        store.close()


def test_allocate_job_refuses_unknown_settings() -> None:
    with (
        pytest.raises(TypeError, match="boards_please"),
        allocate_job(AllocationSettings(), boards_please=3),
    ):
        pass
