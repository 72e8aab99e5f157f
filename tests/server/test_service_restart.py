"""A restart on the same database keeps users, sessions, jobs and board assignments."""

from __future__ import annotations

from typing import Any

from pyspalloc.server.store import JobState, Store
from tests.server.service_support import SERVICE_TIMEOUT, login, state, wait_for
from tests.support.http_client import Http


def test_restart_keeps_everything(make_service: Any) -> None:
    first = make_service()
    alice = login(first, "alice")
    ready = alice.create(**{"dimensions": {"width": 2, "height": 2}}).headers["location"]
    wait_for(lambda: state(alice, ready) == "READY")
    queued = alice.create(**{"dimensions": {"width": 4, "height": 2}}).headers["location"]
    small = alice.create(**{"num-boards": 1}).headers["location"]
    wait_for(lambda: state(alice, small) == "READY")
    before = alice.get(ready + "/machine").json()
    small_id = int(small.rsplit("/", 1)[1])
    csrf = dict(alice.csrf)
    cookies = alice.http.cookies.copy()
    first.stop()

    # while it is down, pretend the small job was in the middle of a power change
    store = Store(first.config.database_url())
    try:
        assert store.start_power(small_id, True)
        assert store.get_job(small_id).state == JobState.POWER  # type: ignore[union-attr]
    finally:
        store.close()

    second = make_service()
    again = Http(second.url, timeout=SERVICE_TIMEOUT)
    again.http.cookies = cookies
    again.csrf = csrf

    def moved(url: str) -> str:
        return second.url + url.split("/spalloc/", 1)[1]

    # the old session still works, for reads and (with its CSRF token) for writes
    assert state(again, moved(ready)) == "READY"
    assert state(again, moved(queued)) == "QUEUED"
    wait_for(lambda: state(again, moved(small)) == "READY")
    after = again.get(moved(ready) + "/machine").json()
    assert after["boards"] == before["boards"]
    assert after["connections"] == before["connections"]
    assert again.put(moved(ready) + "/keepalive", data="alive").status_code == 200
    # users survive: bob can still log in
    assert login(second, "bob").get("jobs").status_code == 200
    # freeing the boards lets the queued job run
    assert again.delete(moved(ready) + "?reason=done").status_code == 204
    assert again.delete(moved(small) + "?reason=done").status_code == 204
    wait_for(lambda: state(again, moved(queued)) == "READY")
    assert len(again.get(moved(queued) + "/machine").json()["boards"]) == 24
