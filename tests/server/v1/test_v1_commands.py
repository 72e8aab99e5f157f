"""Every v1 command against a live service (spin24, instant power) on a real socket."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspalloc.geometry import Direction, Triad, builtin_machine, dump_machine_definitions
from tests.server.v1.conftest import V1_USER, LineClient
from tests.support.http_client import login
from tests.support.waiting import wait_for


def test_version_is_one_the_old_client_accepts(client: LineClient) -> None:
    version = client.call("version")
    assert version == "5.0.0"
    assert (0, 1, 0) <= tuple(int(v) for v in version.split(".")) < (7, 0, 0)


def test_single_board_job_lifecycle(client: LineClient) -> None:
    job = client.call("create_job", owner="me@example.org", keepalive=60.0)
    state = client.wait_ready(job)
    assert state["power"] is True and state["keepalive"] == 60.0
    assert state["keepalivehost"] == "127.0.0.1" and state["reason"] is None
    info = client.call("get_job_machine_info", job)
    assert info["width"] == info["height"] == 8
    assert info["machine_name"] == "spin24"
    assert len(info["boards"]) == 1 and len(info["connections"]) == 1
    assert info["connections"][0][0] == [0, 0]
    assert info["connections"][0][1].startswith("127.1.")
    assert client.call("job_keepalive", job) is None
    assert client.call("destroy_job", job, reason="finished") is None
    gone = client.call("get_job_state", job)
    assert gone["state"] == 4 and gone["reason"] == "finished"


def test_every_request_form(client: LineClient) -> None:
    one = client.call("create_job", 1, owner="a", machine="spin24")
    three = client.call("create_job", 3, owner="a", tags=["default"], min_ratio=0.333)
    rect = client.call("create_job", 2, 1, owner="a", tags="default", max_dead_boards=0)
    board = client.call("create_job", 3, 1, 2, owner="a", machine="spin24", keepalive=None)
    for job in (one, three, rect, board):
        client.wait_ready(job)
    assert len(client.call("get_job_machine_info", one)["boards"]) == 1
    assert len(client.call("get_job_machine_info", three)["boards"]) == 3
    info = client.call("get_job_machine_info", rect)
    assert (info["width"], info["height"]) == (28, 16)  # 2 x 1 triads, no wrap: +4
    assert len(info["boards"]) == 6
    assert client.call("get_job_machine_info", board)["boards"] == [[3, 1, 2]]
    # null keepalive: the longest the service allows
    assert client.call("get_job_state", board)["keepalive"] == 300.0


def test_create_job_refusals(client: LineClient) -> None:
    def refused(*args: Any, **kwargs: Any) -> str:
        found = client.call_raw("create_job", *args, **kwargs)
        assert found is not None and "exception" in found, found
        return str(found["exception"])

    assert "owner" in refused()
    assert "owner" in refused(owner="tab\there")
    assert "Only one of machine and tags" in refused(owner="a", machine="spin24", tags=["x"])
    assert "integer" in refused("two", owner="a")
    assert "positional" in refused(1, 2, 3, 4, owner="a")
    assert "unexpected keyword" in refused(owner="a", colour="red")
    assert "keepalive" in refused(owner="a", keepalive=3600)
    assert "cannot fit" in refused(1000, owner="a")
    assert "no machine" in refused(owner="a", machine="nowhere")
    assert "no machine" in refused(owner="a", tags=["nowhere"])
    assert client.call("list_jobs") == []  # nothing left behind


def test_unknown_and_foreign_jobs_read_as_unknown(client: LineClient, v1_service: Any) -> None:
    assert client.call("get_job_state", 999)["state"] == 0
    assert client.call("get_job_machine_info", 999)["width"] is None
    alice = login(v1_service, "alice")
    created = alice.create(**{"num-boards": 1})
    assert created.status_code == 201
    rest_job = created.json()["job-id"]
    assert client.call("get_job_state", rest_job)["state"] == 0
    client.call("destroy_job", rest_job)  # not the v1 user's: untouched
    assert alice.state(created.headers["location"]) in ("QUEUED", "POWER", "READY")
    listed = {j["job_id"]: j for j in client.call("list_jobs")}
    assert listed[rest_job]["owner"] == "<Hidden>"


def test_power_off_and_on(client: LineClient) -> None:
    job = client.call("create_job", owner="a")
    client.wait_ready(job)
    assert client.call("power_off_job_boards", job) is None
    wait_for(lambda: client.call("get_job_state", job)["power"] is False, 20)
    assert client.call("power_on_job_boards", job) is None
    state = client.wait_ready(job)
    assert state["power"] is True


def test_v1_job_is_an_ordinary_job(client: LineClient, v1_service: Any) -> None:
    job = client.call("create_job", 2, 1, owner="wire-owner", machine="spin24")
    client.wait_ready(job)
    root = login(v1_service, "root")
    url = f"jobs/{job}"
    state = root.get(url).json()
    assert state["state"] == "READY" and state["owner"] == V1_USER
    assert state["original-request"]["v1"]["owner"] == "wire-owner"
    assert state["original-request"]["dimensions"] == {"width": 2, "height": 1}
    assert root.get(url + "/machine").json()["width"] == 2  # REST: triads
    assert root.put(url + "/keepalive", data="alive").status_code == 200
    assert root.delete(url, params={"reason": "from REST"}).status_code == 204
    gone = client.call("get_job_state", job)
    assert gone["state"] == 4 and gone["reason"] == "from REST"
    assert not any(j["job_id"] == job for j in client.call("list_jobs"))


def test_keepalive_expiry_destroys_v1_jobs(make_v1: Callable[..., Any]) -> None:
    service = make_v1(keepalive_min=1.0, expiry_period=0.2)
    client = LineClient(service.app.state.v1.port)
    try:
        kept = client.call("create_job", owner="a", keepalive=1.5)
        polled = client.call("create_job", owner="a", keepalive=1.5)
        dropped = client.call("create_job", owner="a", keepalive=1.5)
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            client.call("job_keepalive", kept)
            client.call("get_job_state", polled)  # any command about the job refreshes it
            time.sleep(0.2)
        state = client.call("get_job_state", dropped)
        assert state["state"] == 4 and state["reason"] == "keepalive expired"
        assert client.call("get_job_state", kept)["state"] == 3
        assert client.call("get_job_state", polled)["state"] == 3
    finally:
        client.close()


def test_quota_applies_to_the_v1_group(v1_service: Any, client: LineClient) -> None:
    assert v1_service.app.state.ctx.store.set_group_quota(V1_USER, 0.0)
    found = client.call_raw("create_job", owner="a")
    assert found is not None and "quota exceeded" in found["exception"]


def test_list_jobs_and_machines(client: LineClient) -> None:
    job = client.call("create_job", 1, owner="someone", keepalive=45)
    client.wait_ready(job)
    (listed,) = client.call("list_jobs")
    assert listed["job_id"] == job and listed["owner"] == "someone"
    assert listed["args"] == [1] and listed["kwargs"]["keepalive"] == 45
    assert listed["state"] == 3 and listed["power"] is True
    assert listed["allocated_machine_name"] == "spin24" and len(listed["boards"]) == 1
    assert listed["keepalive"] == 45.0 and listed["keepalivehost"] == "127.0.0.1"
    (machine,) = client.call("list_machines")
    assert machine == {
        "name": "spin24", "tags": ["default"], "width": 4, "height": 2,
        "dead_boards": [], "dead_links": [],
    }  # fmt: skip


def test_board_positions_positional_and_keyword(client: LineClient) -> None:
    physical = client.call("get_board_position", "spin24", 1, 0, 2)
    assert physical == [0, 0, 5]
    assert client.call("get_board_at_position", "spin24", *physical) == [1, 0, 2]
    assert client.call("get_board_position", machine_name="spin24", x=1, y=0, z=2) == physical
    assert client.call("get_board_position", "spin24", 9, 9, 0) is None
    assert client.call("get_board_at_position", "nowhere", 0, 0, 0) is None


def test_where_is_every_form(client: LineClient) -> None:
    job = client.call("create_job", 2, 1, owner="a", machine="spin24")
    client.wait_ready(job)
    root = client.call("get_job_machine_info", job)["boards"][0]
    by_board = client.call("where_is", machine="spin24", x=root[0], y=root[1], z=1)
    assert by_board["job_id"] == job and by_board["board_chip"] == [0, 0]
    assert by_board["logical"] == [root[0], root[1], 1]
    by_physical = client.call("where_is", machine="spin24", cabinet=0, frame=0, board=0)
    assert by_physical["logical"] == [0, 0, 0] and by_physical["chip"] == [0, 0]
    by_chip = client.call("where_is", machine="spin24", chip_x=100, chip_y=77)
    assert by_chip["chip"] == [100 % 48, 77 % 24]
    by_job = client.call("where_is", job_id=job, chip_x=13, chip_y=5)
    assert by_job["job_chip"] == [13, 5] and by_job["job_id"] == job
    assert by_job["board_chip"] == [5, 1]
    assert client.call("where_is", machine="nowhere", x=0, y=0, z=0) is None
    assert client.call("where_is", job_id=job, chip_x=40, chip_y=0) is None
    bad = client.call_raw("where_is", machine="spin24", x=0)
    assert bad is not None and "Invalid arguments" in bad["exception"]


def test_notifications(connect: Callable[[], LineClient]) -> None:
    watcher, worker = connect(), connect()
    assert watcher.call("notify_job") is None
    assert watcher.call("notify_machine", "spin24") is None
    job = worker.call("create_job", owner="a")
    worker.wait_ready(job)
    seen_jobs: set[int] = set()
    seen_machines: set[str] = set()
    watcher.sock.settimeout(10)
    while job not in seen_jobs or "spin24" not in seen_machines:
        line = watcher.read_line()
        assert line is not None
        seen_jobs.update(line.get("jobs_changed", []))
        seen_machines.update(line.get("machines_changed", []))
    assert watcher.call("no_notify_job") is None
    assert watcher.call("no_notify_machine") is None
    watcher.notifications.clear()  # any sent before the replies above
    worker.call("destroy_job", job)
    time.sleep(0.5)
    assert watcher.call("version") == "5.0.0"
    assert watcher.notifications == []


def test_report_problem_and_login(client: LineClient, v1_service: Any) -> None:
    job = client.call("create_job", owner="a")
    client.wait_ready(job)
    address = client.call("get_job_machine_info", job)["connections"][0][1]
    assert client.call("report_problem", address, 0, 0, description="bad chip") is None
    missing = client.call_raw("report_problem", "10.9.9.9")
    assert missing is not None and "no job" in missing["exception"]
    refused = client.call_raw("login", "user", "password")
    assert refused is not None and refused["exception"] == "upgrading security is not supported"


def test_dead_boards_and_links_in_old_numbering(
    make_v1: Callable[..., Any], tmp_path: Path
) -> None:
    machine = builtin_machine("spin24")
    dead = Triad(2, 1, 1)
    boards = dict(machine.boards)
    boards[dead] = dataclasses.replace(boards[dead], functioning=False)
    broken = dataclasses.replace(
        machine, boards=boards, dead_links=frozenset({(Triad(0, 0, 0), Direction.NORTH_EAST)})
    )
    path = tmp_path / "machines.json"
    path.write_text(json.dumps(dump_machine_definitions([broken])))
    service = make_v1(machines=[str(path)])
    client = LineClient(service.app.state.v1.port)
    try:
        (listed,) = client.call("list_machines")
        assert listed["dead_boards"] == [[2, 1, 1]]
        assert listed["dead_links"] == [[0, 0, 0, 1]]  # north_east is 1 in old Links
        # the whole machine has a dead board: refused with max_dead_boards=0, given when
        # it is null or absent (any number dead, as the old server)
        refused = client.call_raw("create_job", 4, 2, owner="a", max_dead_boards=0)
        assert refused is not None and "no machine" in refused["exception"]
        whole = client.call("create_job", 4, 2, owner="a", max_dead_boards=None)
        client.wait_ready(whole)
        assert len(client.call("get_job_machine_info", whole)["boards"]) == 23
    finally:
        client.close()


def test_any_dead_boards_never_means_busy_boards(client: LineClient) -> None:
    """``max_dead_boards`` absent (as the old server: any number dead) on a machine with
    no dead boards: a request for the whole machine waits for a busy board."""
    one = client.call("create_job", owner="a")
    client.wait_ready(one)
    whole = client.call("create_job", 4, 2, owner="a")
    time.sleep(1.5)  # three allocator periods
    assert client.call("get_job_state", whole)["state"] == 1  # QUEUED
    client.call("destroy_job", one)
    client.wait_ready(whole)
    assert len(client.call("get_job_machine_info", whole)["boards"]) == 24


def test_polled_state_follows_changes_made_over_rest(client: LineClient, v1_service: Any) -> None:
    """A job polled over v1 (remembered between changes) shows a REST power change and a
    REST destroy at once."""
    job = client.call("create_job", owner="a")
    client.wait_ready(job)
    for _ in range(3):
        assert client.call("get_job_state", job)["power"] is True
    root = login(v1_service, "root")
    url = f"jobs/{job}"
    assert root.post(url + "/machine/power", json={"power": "OFF"}).status_code == 202
    assert client.call("get_job_state", job)["power"] is False  # at once: the target
    wait_for(lambda: client.call("get_job_state", job)["state"] == 3, 20)  # done
    assert client.call("get_job_state", job)["power"] is False
    assert root.delete(url, params={"reason": "gone"}).status_code == 204
    state = client.call("get_job_state", job)
    assert (state["state"], state["reason"]) == (4, "gone")


def test_jobs_changed_together_are_read_together(
    client: LineClient, v1_service: Any, monkeypatch: Any
) -> None:
    """The first poll after a change reads every job announced with it in one store read;
    the other polls and the repeated ones read nothing; a later change is seen at once."""
    ctx = v1_service.app.state.ctx
    jobs = [client.call("create_job", owner="a") for _ in range(6)]
    for job in jobs:
        client.wait_ready(job)
    reads: list[list[int]] = []
    real = ctx.store.jobs_owned_by

    def counted(owner_id: int, job_ids: list[int]) -> Any:
        reads.append(sorted(job_ids))
        return real(owner_id, job_ids)

    monkeypatch.setattr(ctx.store, "jobs_owned_by", counted)
    assert [client.call("get_job_state", j)["state"] for j in jobs] == [3] * 6
    assert reads == []  # all remembered since their last change
    ctx.events.notify(*[("job", j) for j in jobs[1:]], "jobs")  # as a power-on pass does
    for _ in range(2):
        assert [client.call("get_job_state", j)["state"] for j in jobs] == [3] * 6
    assert reads == [sorted(jobs[1:])]
    root = login(v1_service, "root")
    assert root.delete(f"jobs/{jobs[2]}", params={"reason": "over"}).status_code == 204
    state = client.call("get_job_state", jobs[2])
    assert (state["state"], state["reason"]) == (4, "over")
    assert client.call("get_job_state", jobs[3])["state"] == 3
    assert reads[1:] == [[jobs[2]]]
