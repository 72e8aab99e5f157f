"""``pyspalloc admin`` against a live service: users, groups, boards, machines and board
reports over REST, and refusals for non-admins."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pyspalloc.geometry import Triad, builtin_machine, dump_machine_definitions
from tests.cli.conftest import Cli
from tests.support.http_client import login
from tests.support.waiting import wait_for


def _admin(cli: Cli, *args: str, code: int = 0) -> Any:
    return cli.json("admin", *args, user="root", code=code)


def test_users(cli: Cli) -> None:
    added = _admin(cli, "users", "add", "carol", "--role", "reader", "--set-password", "carol-pw-9")
    assert added["userName"] == "carol" and added["trustLevel"] == "READER"
    names = [u["userName"] for u in _admin(cli, "users", "list")]
    assert {"alice", "bob", "carol", "root"} <= set(names)
    assert _admin(cli, "users", "set-role", "carol", "USER")["trustLevel"] == "USER"
    assert _admin(cli, "users", "disable", "carol")["enabled"] is False
    refused = cli("machines", "--json", user="carol", password="carol-pw-9")
    assert refused.exit_code != 0 and "login" in refused.output
    assert _admin(cli, "users", "enable", "carol")["enabled"] is True
    _admin(cli, "users", "password", "carol", "--set-password", "carol-new-pw")
    assert cli("machines", user="carol", password="carol-new-pw").exit_code == 0
    shown = _admin(cli, "users", "show", str(added["userId"]))
    assert shown["userName"] == "carol" and list(shown["groups"]) == ["carol"]
    table = cli("admin", "users", "list", user="root")
    assert table.exit_code == 0 and "carol" in table.stdout and "READER" in table.stdout
    assert _admin(cli, "users", "delete", "carol") == {"message": "deleted user carol"}
    missing = cli("admin", "users", "show", "carol", user="root")
    assert missing.exit_code != 0 and "no such user carol" in missing.output
    myself = cli("admin", "users", "disable", "root", user="root")
    assert myself.exit_code != 0 and "cannot disable your own account" in myself.output


def test_refused_for_non_admins(cli: Cli) -> None:
    for user in ("alice", "rita"):
        result = cli("admin", "users", "list", user=user)
        assert result.exit_code != 0
        assert "refused by the service (HTTP 403): computer says no" in result.output
    assert "carol" not in cli("admin", "users", "list", user="root").stdout


def test_groups(cli: Cli) -> None:
    group = _admin(cli, "groups", "add", "lab", "--quota", "2")
    assert group["quota"] == 7200 and group["members"] == {}
    assert _admin(cli, "groups", "quota", "lab", "0.5")["quota"] == 1800
    assert _admin(cli, "groups", "add-member", "lab", "bob")["userName"] == "bob"
    assert list(_admin(cli, "groups", "show", "lab")["members"]) == ["bob"]
    again = cli("admin", "groups", "add-member", "lab", "bob", user="root")
    assert again.exit_code != 0 and "already a member" in again.output
    table = cli("admin", "groups", "list", user="root")
    assert table.exit_code == 0 and "0.5 board-hours" in table.stdout and "bob" in table.stdout
    _admin(cli, "groups", "remove-member", "lab", "bob")
    assert _admin(cli, "groups", "show", "lab")["members"] == {}
    assert _admin(cli, "groups", "quota", "lab", "unlimited")["quota"] is None
    assert _admin(cli, "groups", "delete", "lab") == {"message": "deleted group lab"}
    assert "lab" not in [g["groupName"] for g in _admin(cli, "groups", "list")]


def test_boards(cli: Cli, service: Any) -> None:
    board = service.app.state.ctx.machines["spin24"].board(Triad(1, 0, 2))
    physical = ",".join(str(v) for v in board.physical)
    off = _admin(cli, "boards", "disable", "spin24", "--triad", "1,0,2")
    assert off == {"machine": "spin24", "board": "1,0,2", "enabled": False}
    assert _admin(cli, "boards", "show", "spin24", "--physical", physical)["enabled"] is False
    assert _admin(cli, "boards", "show", "spin24", "--ip", board.ip)["enabled"] is False
    machines = {m["name"]: m for m in cli.json("machines")}
    assert machines["spin24"]["dead_boards"] == 1
    assert _admin(cli, "boards", "enable", "spin24", "--ip", board.ip)["enabled"] is True
    both = cli("admin", "boards", "show", "spin24", "--triad", "0,0,0", "--ip", "x", user="root")
    assert both.exit_code != 0 and "exactly one" in both.output
    text = cli("admin", "boards", "show", "spin24", "--triad", "1,0,2", user="root")
    assert "spin24 1,0,2: in service" in text.stdout


def test_machines(cli: Cli, service: Any, tmp_path: Path) -> None:
    machine = dataclasses.replace(builtin_machine("spin5", "127.1.78.0"), name="extra", tags=())
    file = tmp_path / "extra.json"
    file.write_text(json.dumps(dump_machine_definitions([machine])))
    imported = _admin(cli, "machines", "import", str(file))
    assert [m["name"] for m in imported] == ["extra"] and imported[0]["tags"] == ["default"]
    names = {m["name"]: m for m in _admin(cli, "machines", "list")}
    assert names["extra"]["boards"] == 1 and names["extra"]["in-service"] is True
    assert "extra" in [m["name"] for m in cli.json("machines")]
    again = cli("admin", "machines", "import", str(file), user="root")
    assert again.exit_code != 0 and "exists already" in again.output
    _admin(cli, "machines", "out-of-service", "extra")
    assert "extra" not in [m["name"] for m in cli.json("machines")]
    _admin(cli, "machines", "in-service", "extra")
    assert _admin(cli, "machines", "retag", "extra", "tiny", "spare")["tags"] == ["tiny", "spare"]
    alice = login(service, "alice")
    url, _ = alice.ready_job(tags=["tiny"])
    assert alice.get(url + "/machine").json()["machine-name"] == "extra"
    table = cli("admin", "machines", "list", user="root")
    assert table.exit_code == 0 and "tiny, spare" in table.stdout


def test_reports(cli: Cli, service: Any) -> None:
    alice = login(service, "alice")
    url, _ = alice.ready_job()
    sent = alice.post(url + "/report-issue", json={"issue": "smoke", "boards": [{"chip": [0, 0]}]})
    assert sent.status_code == 200, sent.text
    reports = _admin(cli, "reports", "list")
    assert [(r["issue"], r["reporter"]) for r in reports] == [("smoke", "alice")]
    table = cli("admin", "reports", "list", user="root")
    assert "smoke" in table.stdout and "alice" in table.stdout
    cleared = _admin(cli, "reports", "clear", str(reports[0]["board-id"]))
    assert cleared == {"board-id": reports[0]["board-id"], "cleared": 1}
    wait_for(lambda: _admin(cli, "reports", "list") == [], 5)
