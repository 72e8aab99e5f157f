"""Lifecycle rules: roles, power failures, and the anti-starvation importance span."""

from __future__ import annotations

import time
from typing import Any

from tests.server.service_support import SERVICE_TIMEOUT, login, state, wait_for
from tests.support.http_client import Http


def test_reader_can_look_but_not_create(service: Any) -> None:
    rita = Http(service.url, timeout=SERVICE_TIMEOUT)
    assert rita.login("rita", "rita-pw-4").status_code == 302
    assert rita.get("machines").status_code == 200
    assert rita.get("jobs").status_code == 200
    refused = rita.create()
    assert (refused.status_code, refused.text) == (403, "computer says no")


def test_failed_power_on_requeues_then_succeeds(service: Any) -> None:
    alice = login(service, "alice")
    service.controller.fail_next = RuntimeError("BMP did not answer")
    url = alice.create(**{"num-boards": 3}).headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    assert service.controller.calls[0][0] == "off"  # the failed boards were powered off
    assert ("on", "spin24", 3) in service.controller.calls


def test_failed_user_power_change_destroys_job(service: Any) -> None:
    alice = login(service, "alice")
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    service.controller.fail_next = RuntimeError("BMP did not answer")
    assert alice.post(url + "/machine/power", json={"power": "ON"}).status_code == 202
    body = wait_for(lambda: (b := alice.get(url).json())["state"] == "DESTROYED" and b)
    assert body["reason"] == "Error changing power state!  Please contact an administrator."


def test_long_waiting_request_holds_back_newcomers(make_service: Any) -> None:
    service = make_service(importance_span=5.0, allocator_period=0.2)
    alice = login(service, "alice")
    first = alice.create(**{"dimensions": {"width": 1, "height": 1}}).headers["location"]
    wait_for(lambda: state(alice, first) == "READY")
    big = alice.create(**{"dimensions": {"width": 4, "height": 2}}).headers["location"]
    time.sleep(1.0)  # several passes: the big request's importance is now far ahead
    small = alice.create(**{"num-boards": 1}).headers["location"]
    time.sleep(1.0)
    assert state(alice, small) == "QUEUED"  # free boards exist, but it must wait its turn
    assert alice.delete(first + "?reason=make room").status_code == 204
    wait_for(lambda: state(alice, big) == "READY")
    assert state(alice, small) == "QUEUED"
    assert alice.delete(big + "?reason=done").status_code == 204
    wait_for(lambda: state(alice, small) == "READY")


def test_group_quota_stops_and_refuses_jobs(make_service: Any) -> None:
    from pyspalloc.server.store import Store

    service = make_service(expiry_period=0.2)
    store = Store(service.config.database_url())
    try:
        assert store.set_group_quota("alice", 5.0)
    finally:
        store.close()
    alice = login(service, "alice")
    unknown = alice.create(group="nosuchgroup")
    assert unknown.status_code == 400 and "nosuchgroup" in unknown.text
    url = alice.create(**{"num-boards": 3}, group="alice").headers["location"]
    body = wait_for(lambda: (b := alice.get(url).json())["state"] == "DESTROYED" and b)
    assert body["reason"] == "quota exceeded"
    refused = alice.create()
    assert refused.status_code == 400
    assert refused.text.startswith("quota exceeded in group ")
    # bob's group has no quota
    assert login(service, "bob").create().status_code == 201


def test_emergency_stop(make_service: Any) -> None:
    service = make_service(emergency_code="big-red-button")
    alice = login(service, "alice")
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    assert alice.get("emergencyStop?commandCode=big-red-button").status_code == 403
    root = login(service, "root")
    assert root.get("emergencyStop?commandCode=wrong").status_code == 400
    assert root.get("emergencyStop?commandCode=big-red-button").status_code == 200
    body = alice.get(url).json()
    assert (body["state"], body["reason"]) == ("DESTROYED", "emergency stop")
    refused = alice.create()
    assert refused.status_code == 500
    assert refused.text.endswith("The Server has been stopped due to an emergency.")
    wait_for(lambda: not service.controller.powered)


def test_jobs_destroyed_together_are_powered_off_in_one_call(make_service: Any) -> None:
    """Destroys within one batch window: one power-off of all their boards, then every
    board is free again and the jobs are DESTROYED."""
    service = make_service(batch_window=2.0)  # a gap under 0.4 s keeps the batch open
    alice = login(service, "alice")
    urls = [alice.create().headers["location"] for _ in range(3)]
    for url in urls:
        wait_for(lambda url=url: state(alice, url) == "READY")
    calls_before = len(service.controller.calls)
    for url in urls:
        assert alice.delete(url + "?reason=done").status_code == 204
    wait_for(lambda: len(service.controller.calls) > calls_before)
    time.sleep(0.5)  # a second call, if any, would be made by now
    assert service.controller.calls[calls_before:] == [("off", "spin24", 3)]
    assert not service.controller.powered
    for url in urls:
        assert alice.get(url).json()["state"] == "DESTROYED"
    again = [alice.create().headers["location"] for _ in range(3)]
    for url in again:  # the freed boards are allocated again
        wait_for(lambda url=url: state(alice, url) == "READY")
