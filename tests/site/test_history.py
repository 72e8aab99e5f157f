"""History against a live service on both databases: jobs that ended more than the
grace period ago move with their allocations to the history tables, stay readable (job
URL, ``jobs?deleted=true``, admin history, group usage) and are purged after retention."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from pyspalloc.server.store import Store
from pyspalloc.server.store.models import BoardAllocationRow, JobHistoryRow, JobRow
from tests.support.http_client import login
from tests.support.waiting import wait_for


def _count(store: Store, what: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(what)) or 0)


def test_ended_jobs_move_to_history(make_service: Callable[..., Any]) -> None:
    service = make_service(grace_period=1.0, history_period=0.2)
    store: Store = service.app.state.ctx.store
    alice, bob, root = login(service, "alice"), login(service, "bob"), login(service, "root")
    old, _ = alice.ready_job(**{"num-boards": 3})
    assert alice.delete(old + "?reason=done").status_code == 204
    used = {g["name"]: g for g in alice.get("groups").json()["groups"]}["alice"]["used"]
    assert used > 0
    newest, _ = bob.ready_job()  # live, and the newest job: never moved
    old_id = int(old.rsplit("/", 1)[1])
    wait_for(lambda: store.count_history() == 1 or None, 30.0)
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).where(JobRow.id == old_id)) == 0
        left = conn.scalar(select(func.count()).where(BoardAllocationRow.job_id == old_id))
        assert left == 0
    assert _count(store, JobRow.__table__) == 1
    # still readable: the job URL, the list of destroyed jobs, the admin history
    state = alice.get(old).json()
    assert state["state"] == "DESTROYED" and state["reason"] == "done"
    assert old in alice.get("jobs?deleted=true").json()["jobs"]
    assert old not in alice.get("jobs").json()["jobs"]
    for sub in ("machine", "machine/power", "chip?x=0&y=0"):
        assert alice.get(f"{old}/{sub}").status_code < 500, sub
    assert alice.put(old + "/keepalive").status_code < 500
    assert alice.delete(old).status_code == 204
    assert alice.get(service.url + f"system/job_info/{old_id}").status_code == 200
    assert old not in bob.get("jobs?deleted=true").json()["jobs"]
    assert bob.get(old).status_code == 404
    assert alice.get("admin/history").status_code == 403
    listed = root.get("admin/history")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 1
    (entry,) = body["jobs"]
    assert entry["id"] == old_id and entry["owner"] == "alice" and entry["group"] == "alice"
    assert entry["num-boards"] == 3 and len(entry["boards"]) == 3
    assert entry["reason"] == "done" and entry["machine"] == "spin24"
    page = root.get(service.url + "system/admin/history")
    assert page.status_code == 200 and f'data-job="{old_id}"' in page.text
    assert (
        "(1 in all)" in page.text
        and alice.get(service.url + "system/admin/history").status_code == 403
    )
    # the usage of moved jobs still counts against the group
    after = {g["name"]: g for g in alice.get("groups").json()["groups"]}["alice"]["used"]
    assert abs(after - used) < 0.01
    assert bob.state(newest) == "READY"
    # a new job never reuses a historical id
    made = alice.create()
    assert made.status_code == 201 and made.json()["job-id"] > old_id


def test_history_is_purged_after_retention(make_service: Callable[..., Any]) -> None:
    service = make_service(grace_period=0.5, history_period=0.2, history_retention=2.0)
    store: Store = service.app.state.ctx.store
    alice = login(service, "alice")
    first, _ = alice.ready_job()
    assert alice.delete(first).status_code == 204
    alice.ready_job()
    wait_for(lambda: store.count_history() == 1 or None, 30.0)
    wait_for(lambda: store.count_history() == 0 or None, 30.0)
    assert _count(store, JobHistoryRow.__table__) == 0
    assert alice.get(first).status_code == 404


def test_a_reported_job_stays_until_its_reports_are_cleared(
    make_service: Callable[..., Any],
) -> None:
    service = make_service(grace_period=0.5, history_period=0.2)
    store: Store = service.app.state.ctx.store
    alice, root = login(service, "alice"), login(service, "root")
    url, _ = alice.ready_job(board={"x": 0, "y": 0, "z": 0})
    report = alice.post(
        url + "/report-issue", json={"issue": "flaky", "boards": [{"x": 0, "y": 0, "z": 0}]}
    )
    assert report.status_code == 200, report.text
    assert alice.delete(url).status_code == 204
    alice.ready_job()
    first, second = url, alice.create()
    assert second.status_code == 201
    assert alice.delete(second.headers["location"]).status_code == 204
    alice.ready_job()  # the newest job, never moved
    wait_for(lambda: store.count_history() == 1 or None, 30.0)  # the unreported one
    time.sleep(1.0)
    assert store.count_history() == 1
    (entry,) = root.get("admin/history").json()["jobs"]
    assert entry["id"] == second.json()["job-id"]
    board_id = root.get("admin/board-reports").json()["reports"][0]["board-id"]
    assert root.delete(f"admin/board-reports/{board_id}").status_code == 200
    wait_for(lambda: store.count_history() == 2 or None, 30.0)
    assert alice.get(first).json()["state"] == "DESTROYED"
