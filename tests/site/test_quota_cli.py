"""``pyspalloc quota`` and ``pyspalloc jobs --deleted`` against a live service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from pyspalloc.server.store import Store
from pyspalloc.server.store.models import GroupRow
from tests.cli.conftest import Cli, clean_env
from tests.support.http_client import login
from tests.support.waiting import wait_for

__all__ = ["clean_env"]


def test_quota_command(service: Any) -> None:
    store: Store = service.app.state.ctx.store
    with store.engine.begin() as conn:
        conn.execute(update(GroupRow).where(GroupRow.name == "alice").values(quota=7200.0))
    cli = Cli(service.url)
    (mine,) = cli.json("quota")
    assert mine == {
        "id": mine["id"], "name": "alice", "type": "group", "quota": 7200.0, "used": 0,
        "remaining": 7200.0,
    }  # fmt: skip
    table = cli("quota")
    assert table.exit_code == 0, table.output
    line = next(x for x in table.stdout.splitlines() if "alice" in x)
    assert "2.000" in line and "0.000" in line
    assert cli("quota", "--all").exit_code != 0  # alice is no admin
    everything = cli.json("quota", "--all", user="root")
    assert {g["name"] for g in everything} >= {"alice", "bob", "root"}
    assert [g["name"] for g in cli.json("quota", "--of", "bob", user="root")] == ["bob"]


def test_jobs_deleted_lists_moved_jobs(make_service: Callable[..., Any]) -> None:
    service = make_service(grace_period=0.5, history_period=0.2)
    store: Store = service.app.state.ctx.store
    alice = login(service, "alice")
    old, _ = alice.ready_job()
    assert alice.delete(old + "?reason=finished").status_code == 204
    alice.ready_job()
    wait_for(lambda: store.count_history() == 1 or None, 30.0)
    old_id = int(old.rsplit("/", 1)[1])
    listed = Cli(service.url).json("jobs", "--deleted")
    moved = [j for j in listed if j["id"] == old_id]
    assert moved and moved[0]["state"] == "DESTROYED", listed
    assert old_id not in [j["id"] for j in Cli(service.url).json("jobs")]
