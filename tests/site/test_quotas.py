"""Quotas that hold, against a live service on both databases: the group must be named
by a member of several, usage and what is left are shown, a running job is stopped when
its group has nothing left, collabs and NMPI job ids are accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from pyspalloc.server.store import Store
from pyspalloc.server.store import web_queries as wq
from pyspalloc.server.store.models import GroupRow, JobRow
from tests.support.http_client import login
from tests.support.waiting import wait_for


def _store(service: Any) -> Store:
    store: Store = service.app.state.ctx.store
    return store


def _groups(client: Any) -> dict[str, dict[str, Any]]:
    response = client.get("groups")
    assert response.status_code == 200, response.text
    return {g["name"]: g for g in response.json()["groups"]}


def _set_quota(store: Store, name: str, quota: float | None) -> int:
    with store.engine.begin() as conn:
        conn.execute(update(GroupRow).where(GroupRow.name == name).values(quota=quota))
    groups = [g for g in wq.list_groups(store) if g.name == name]
    return groups[0].id


def test_member_of_two_groups_must_name_one(service: Any) -> None:
    store = _store(service)
    team = wq.create_group(store, "team", 10_000.0)
    alice_user = store.get_user("alice")
    assert alice_user is not None and wq.add_member(store, team.id, alice_user)
    alice = login(service, "alice")
    refused = alice.create()
    assert refused.status_code == 400
    assert "several groups (alice, team)" in refused.text
    named = alice.create(group="team")
    assert named.status_code == 201, named.text
    job = store.get_job(named.json()["job-id"])
    assert job is not None
    with store.engine.connect() as conn:
        group_id = conn.scalar(JobRow.__table__.select().with_only_columns(JobRow.group_id)
                               .where(JobRow.id == job.id))  # fmt: skip
    assert group_id == team.id
    assert alice.create(group="nobody").status_code == 400
    bob = login(service, "bob")  # in one group: needs no name
    assert bob.create().status_code == 201


def test_usage_and_remaining_over_rest(service: Any) -> None:
    store = _store(service)
    _set_quota(store, "alice", 100_000.0)
    alice = login(service, "alice")
    before = _groups(alice)
    assert set(before) == {"alice"}
    assert before["alice"]["quota"] == 100_000.0 and before["alice"]["used"] == 0
    url, _ = alice.ready_job(**{"num-boards": 3})
    wait_for(lambda: _groups(alice)["alice"]["used"] > 0 or None)
    assert alice.delete(url).status_code == 204
    after = _groups(alice)["alice"]
    assert after["used"] > 0
    assert after["remaining"] == round(100_000.0 - after["used"], 3)
    home = alice.get(service.url + "system").text
    row = home.split('data-group="alice"', 1)[1].split("</tr>", 1)[0]
    assert "27.778" in row  # the quota in board-hours
    assert f"{after['used'] / 3600:.3f}" in row and f"{after['remaining'] / 3600:.3f}" in row
    assert alice.get("groups?all=true").status_code == 403
    root = login(service, "root")
    everything = {g["name"] for g in root.get("groups?all=true").json()["groups"]}
    assert {"alice", "bob", "root"} <= everything
    assert [g["name"] for g in root.get("groups?user=alice").json()["groups"]] == ["alice"]
    admin_page = root.get(service.url + "system/admin/groups").text
    row = admin_page.split('data-group="alice"', 1)[1].split("</tr>", 1)[0]
    assert f"{after['used'] / 3600:.3f}" in row and f"{after['remaining'] / 3600:.3f}" in row


def test_running_job_is_stopped_when_group_has_nothing_left(
    make_service: Callable[..., Any],
) -> None:
    service = make_service(expiry_period=0.3)
    store = _store(service)
    _set_quota(store, "alice", 1000.0)
    alice = login(service, "alice")
    first, _ = alice.ready_job()
    assert alice.delete(first).status_code == 204
    # the first job used 998 board-seconds of the 1000: a second job's own usage stays
    # far below the quota, but the group has next to nothing left
    job_id = int(first.rsplit("/", 1)[1])
    with store.engine.begin() as conn:
        conn.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(allocation_time=JobRow.finish_time - 998.0)
        )
    second, _ = alice.ready_job()

    def stopped() -> dict[str, Any] | None:
        body: dict[str, Any] = alice.get(second).json()
        return body if body["state"] == "DESTROYED" else None

    ended = wait_for(stopped, 30.0)
    assert ended["reason"] == "quota exceeded"
    refused = alice.create()
    assert refused.status_code == 400 and refused.text.startswith("quota exceeded in group")


def test_default_quotas_apply_to_new_groups(make_service: Callable[..., Any]) -> None:
    service = make_service(default_user_quota=130.0, default_collab_quota=5000.0)
    store = _store(service)
    store.create_user("carol", None)
    assert _set_quota(store, "carol", 130.0) > 0  # (the id; the quota is checked below)
    quotas = {g.name: g.quota for g in store.group_quotas(0.0)}
    assert quotas["carol"] == 130.0
    root = login(service, "root")
    made = root.create(owner="alice", **{"nmpi-collab": "c-default"})
    assert made.status_code == 201, made.text
    assert {g.name: g.quota for g in store.group_quotas(0.0)}["c-default"] == 5000.0


def test_nmpi_collab_and_job_id(service: Any) -> None:
    store = _store(service)
    alice, root = login(service, "alice"), login(service, "root")
    refused = alice.create(**{"nmpi-collab": "neuro-1"})
    assert refused.status_code == 400
    assert refused.text == "collab neuro-1 does not exist or the owner is not in it"
    made = root.create(owner="alice", **{"nmpi-collab": "neuro-1", "nmpi-job-id": 4242})
    assert made.status_code == 201, made.text
    state = root.get(made.headers["location"]).json()
    assert state["original-request"]["nmpi-collab"] == "neuro-1"
    assert state["original-request"]["nmpi-job-id"] == 4242
    collab = _groups(alice)["neuro-1"]
    assert collab["type"] == "collab" and collab["quota"] == 3_600_000.0
    # alice is now in the collab: she may use it herself, and must name a group otherwise
    assert alice.create(**{"nmpi-collab": "neuro-1"}).status_code == 201
    assert alice.create(**{"nmpi-job-id": 7}).status_code == 400  # two groups now
    mine = alice.create(group="alice", **{"nmpi-job-id": 7})
    assert mine.status_code == 201, mine.text
    assert alice.create(**{"nmpi-job-id": "x"}).status_code == 400
    for name in ("", " ", "<b>", "x" * 129, "a\nb"):
        assert root.create(owner="alice", **{"nmpi-collab": name}).status_code == 400, name
    # a personal group is not a collab
    bad = root.create(owner="alice", **{"nmpi-collab": "bob"})
    assert bad.status_code == 400 and "not a collab" in bad.text
    assert store.get_user("bob") is not None
