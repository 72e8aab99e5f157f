"""Machine long polls, where-is of allocated boards, and URLs behind a TLS proxy."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.server.service_support import login, state, wait_for


def test_machine_long_poll_wakes_on_allocation(service: Any) -> None:
    alice = login(service, "alice")
    result: dict[str, float] = {}

    def poll() -> None:
        started = time.monotonic()
        assert alice.get("machines/spin24?wait=true").status_code == 200
        result["took"] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    alice.create()
    thread.join(10)
    assert 0.4 < result["took"] < 5


def test_where_is_names_the_job(service: Any) -> None:
    alice = login(service, "alice")
    url = alice.create(**{"board": {"x": 1, "y": 0, "z": 1}}).headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    job_id = int(url.rsplit("/", 1)[1])
    # the Ethernet chip of triad (1, 0, 1) is (20, 4); ask about a chip next to it
    found = alice.get("machines/spin24/chip?x=21&y=5").json()
    assert found["job-id"] == job_id
    assert found["job-ref"] == url
    assert found["job-chip"] == [1, 1]
    assert found["board-chip"] == [20, 4]


def test_forwarded_https_gives_https_and_wss_refs(service: Any) -> None:
    alice = login(service, "alice")
    forwarded = {"X-Forwarded-Proto": "https"}
    described = alice.get(alice.srv, headers=forwarded).json()
    assert described["jobs-ref"].startswith("https://")
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    body = alice.get(url, headers=forwarded).json()
    assert body["proxy-ref"].startswith("wss://")
    assert alice.get(url).json()["proxy-ref"].startswith("ws://")


def test_machine_file_without_tags_is_tagged_default(make_service: Any, tmp_path: Any) -> None:
    import dataclasses
    import json

    from pyspalloc.geometry import builtin_machine, dump_machine_definitions

    bare = dataclasses.replace(builtin_machine("spin5"), tags=(), name="bare")
    path = tmp_path / "machines.json"
    path.write_text(json.dumps(dump_machine_definitions([bare])))
    service = make_service(machines=[str(path)])
    alice = login(service, "alice")
    machines = alice.get("machines").json()["machines"]
    assert [(m["name"], m["tags"]) for m in machines] == [("bare", ["default"])]
    url = alice.create(tags=["default"]).headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    assert alice.get(url + "/machine").json()["machine-name"] == "bare"
