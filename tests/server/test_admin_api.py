"""The admin REST API against a live service (SQLite and PostgreSQL): every resource,
refusals for other roles, anonymous callers and missing CSRF tokens, an import then an
allocation on the imported machine, and a board taken out that the allocator avoids."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import pytest
import requests

from pyspalloc.geometry import Triad, builtin_machine, dump_machine_definitions
from tests.support.http_client import Http, login
from tests.support.waiting import wait_for

ADMIN = "admin/"
SPIN5_AT = "127.1.77.0"


def _definition(name: str = "imported", tags: tuple[str, ...] = ("imp",)) -> dict[str, Any]:
    machine = dataclasses.replace(builtin_machine("spin5", SPIN5_AT), name=name, tags=tags)
    return dump_machine_definitions([machine])


def _login(service: Any, user: str, password: str) -> Http:
    """Log in with a password the shared table does not know (status not checked)."""
    client = Http(service.url)
    client.login(user, password)
    return client


def _events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pyspalloc.audit"]


def test_refusals(service: Any) -> None:
    """Anonymous: 401; USER and READER: 403; an ADMIN cookie session without the CSRF
    token: 403 on every write; the routes are in the OpenAPI document."""
    anonymous = Http(service.url)
    reads = ["admin", "admin/users", "admin/groups", "admin/machines", "admin/import",
             "admin/board?machine=spin24&x=0&y=0&z=0", "admin/users/1", "admin/groups/1",
             "admin/groups/1/members"]  # fmt: skip
    writes = [("POST", "admin/users", {"userName": "eve", "password": "evepass-1"}),
              ("PUT", "admin/users/1", {"enabled": False}), ("DELETE", "admin/users/2", None),
              ("POST", "admin/groups", {"groupName": "g"}), ("DELETE", "admin/groups/1", None),
              ("PUT", "admin/groups/1", {"quota": 5}), ("POST", "admin/import", _definition()),
              ("POST", "admin/groups/1/members", {"userName": "bob"}),
              ("PUT", "admin/machines/spin24/in-service", None)]  # fmt: skip
    for path in reads:
        got = anonymous.get(path)
        assert got.status_code == 401, (path, got.status_code, got.text)
    for who in ("alice", "rita"):
        client = login(service, who)
        for path in reads:
            got = client.get(path)
            assert (got.status_code, got.text) == (403, "computer says no"), path
        for method, path, body in writes:
            got = client.request(method, path, json=body)
            assert got.status_code == 403, (who, method, path, got.text)
    admin = login(service, "root")
    admin.csrf = {}  # a cookie session that does not send the token
    for method, path, body in writes:
        got = admin.request(method, path, json=body)
        assert (got.status_code, got.text) == (403, "invalid or missing CSRF token"), path
    # nothing was changed by any of them
    admin.describe()
    assert "eve" not in admin.get("admin/users").json()
    assert "imported" not in str(admin.get("admin/machines").json())
    paths = requests.get(service.url + "srv/openapi.json", timeout=10).json()["paths"]
    for path in ("import", "board", "users", "users/{user_id}", "groups", "groups/{group_id}",
                 "groups/{group_id}/members", "groups/{group_id}/members/{member_id}",
                 "machines", "machines/{name}/in-service", "machines/{name}/tags"):  # fmt: skip
        assert "/spalloc/srv/spalloc/admin/" + path in paths, path


def test_users(service: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Create, read, change (role, enabled, password) and delete users; disabling and a
    new password end the user's sessions; bad requests get a 4xx with a message."""
    caplog.set_level(logging.INFO, logger="pyspalloc.audit")
    admin = login(service, "root")
    listed = admin.get("admin/users").json()
    assert set(listed) >= {"alice", "bob", "root", "rita"}
    created = admin.post(
        "admin/users", json={"userName": "carol", "password": "carol-pw-9", "trustLevel": "READER"}
    )
    assert created.status_code == 201, created.text
    record = created.json()
    assert created.headers["location"].endswith(f"/admin/users/{record['userId']}")
    assert record["userName"] == "carol" and record["trustLevel"] == "READER"
    assert record["enabled"] is True and record["hasPassword"] is True
    assert "password" not in record and list(record["groups"]) == ["carol"]
    url = created.headers["location"]
    assert admin.get(url).json() == record
    again = admin.post("admin/users", json={"userName": "carol", "password": "carol-pw-9"})
    assert (again.status_code, again.text) == (409, "user carol already exists")
    short = admin.post("admin/users", json={"userName": "dan", "password": "short"})
    assert short.status_code == 400 and "at least 8" in short.text
    bad_role = admin.put(url, json={"trustLevel": "KING"})
    assert bad_role.status_code == 400 and "trustLevel" in bad_role.text
    assert admin.put(url, json={"colour": "red"}).text == "unknown field colour"
    assert admin.get("admin/users/99999").status_code == 404
    huge = "9" * 30  # beyond any database integer: a 400 naming it, not a server error
    for path in (f"admin/users/{huge}", f"admin/groups/{huge}", f"admin/groups/1/members/{huge}"):
        got = admin.get(path)
        assert got.status_code == 400 and got.text.startswith("bad request: path."), path
    member = admin.post("admin/groups/1/members", json={"userId": int(huge)})
    assert (member.status_code, member.text) == (404, "no such user")

    carol = _login(service, "carol", "carol-pw-9")
    assert carol.get("machines").status_code == 200
    role = admin.put(url, json={"trustLevel": "USER"})
    assert role.status_code == 200 and role.json()["trustLevel"] == "USER"
    assert carol.get("machines").status_code == 200  # a role change keeps the session
    disabled = admin.put(url, json={"enabled": False})
    assert disabled.json()["enabled"] is False
    assert carol.get("machines").status_code == 401  # the session ended
    assert _login(service, "carol", "carol-pw-9").get("machines").status_code == 401
    admin.put(url, json={"enabled": True})
    carol = _login(service, "carol", "carol-pw-9")
    assert carol.get("machines").status_code == 200
    assert admin.put(url, json={"password": "carol-new-pw"}).status_code == 200
    assert carol.get("machines").status_code == 401  # a new password ends it too
    assert _login(service, "carol", "carol-new-pw").get("machines").status_code == 200

    me = admin.get("admin/users").json()["root"]
    own = admin.put(me, json={"enabled": False})
    assert (own.status_code, own.text) == (400, "you cannot disable your own account")
    assert admin.delete(me).status_code == 400
    alice = login(service, "alice")
    assert alice.create().status_code == 201
    alice_url = admin.get("admin/users").json()["alice"]
    owner = admin.delete(alice_url)
    assert owner.status_code == 409 and "disable the account instead" in owner.text
    deleted = admin.delete(url)
    assert (deleted.status_code, deleted.text) == (200, "deleted user carol")
    assert admin.get(url).status_code == 404
    assert "carol" not in admin.get("admin/users").json()
    assert Http(service.url).login("carol", "carol-new-pw").status_code != 302
    log = "\n".join(_events(caplog))
    for event in ("user_created", "user_role", "user_disabled", "user_enabled",
                  "user_password_reset", "user_deleted"):  # fmt: skip
        assert f'"event":"{event}"' in log, event
    assert '"via":"rest"' in log and '"target":"carol"' in log


def test_groups_and_members(service: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Create a group, adjust its quota, add, read and remove members, delete it."""
    caplog.set_level(logging.INFO, logger="pyspalloc.audit")
    admin = login(service, "root")
    created = admin.post("admin/groups", json={"groupName": "lab", "quota": 7200})
    assert created.status_code == 201, created.text
    group = created.json()
    url = created.headers["location"]
    assert group == {"groupId": group["groupId"], "groupName": "lab", "quota": 7200,
                     "type": "INTERNAL", "members": {}}  # fmt: skip
    assert admin.get("admin/groups").json()["lab"] == url
    dup = admin.post("admin/groups", json={"groupName": "lab"})
    assert (dup.status_code, dup.text) == (400, "group already exists")
    assert (
        admin.post("admin/groups", json={"groupName": "x", "type": "COLLABRATORY"}).status_code
        == 400
    )
    assert admin.put(url, json={"quota": -1}).status_code == 400
    assert admin.put(url, json={"quota": "lots"}).status_code == 400
    assert admin.put(url, json={"quota": 360}).json()["quota"] == 360
    assert admin.get(url).json()["quota"] == 360
    assert admin.put(url, json={"quota": None}).json()["quota"] is None

    added = admin.post(url + "/members", json={"userName": "bob"})
    assert added.status_code == 201, added.text
    member = added.json()
    assert member["userName"] == "bob" and member["groupName"] == "lab"
    assert member["groupUrl"] == url and member["userUrl"].endswith(f"/users/{member['userId']}")
    murl = added.headers["location"]
    assert admin.get(murl).json() == member
    assert admin.get(url).json()["members"] == {"bob": murl}
    assert admin.get(url + "/members").json() == {"bob": murl}
    again = admin.post(url + "/members", json={"userName": "bob"})
    assert (again.status_code, again.text) == (400, "user already a member of group")
    nobody = admin.post(url + "/members", json={"userName": "nobody"})
    assert (nobody.status_code, nobody.text) == (404, "no such user")
    bob_groups = admin.get(admin.get("admin/users").json()["bob"]).json()["groups"]
    assert bob_groups == {"bob": bob_groups["bob"], "lab": url}
    other = admin.post("admin/groups", json={"groupName": "other"}).headers["location"]
    assert admin.get(other + "/members/" + str(member["id"])).status_code == 404
    assert admin.delete(murl).status_code == 204
    assert admin.get(murl).status_code == 404
    assert admin.delete(murl).status_code == 404
    assert admin.get(url).json()["members"] == {}

    alice = login(service, "alice")
    assert alice.create().status_code == 201  # accounted to alice's personal group
    personal = admin.get("admin/groups").json()["alice"]
    in_use = admin.delete(personal)
    assert in_use.status_code == 409 and "job(s)" in in_use.text
    admin.post(url + "/members", json={"userName": "alice"})
    gone = admin.delete(url)
    assert (gone.status_code, gone.text) == (200, "deleted group lab")
    assert admin.get(url).status_code == 404
    assert "lab" not in admin.get(admin.get("admin/users").json()["alice"]).json()["groups"]
    log = "\n".join(_events(caplog))
    for event in ("group_created", "group_quota", "group_member_added",
                  "group_member_removed", "group_deleted"):  # fmt: skip
        assert f'"event":"{event}"' in log, event


def test_board_state_and_the_allocator(service: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A board taken out (by triad, physical coordinates or address) is avoided by the
    allocator until it is put back."""
    caplog.set_level(logging.INFO, logger="pyspalloc.audit")
    admin = login(service, "root")
    where = {"machine": "spin24", "x": 0, "y": 0, "z": 0}
    assert admin.get("admin/board", params=where).text == "true"
    board = service.app.state.ctx.machines["spin24"].board(Triad(0, 0, 0))
    physical, address = board.physical, board.ip
    by_cfb = {"machine": "spin24", "cabinet": physical[0], "frame": physical[1],
              "board": physical[2]}  # fmt: skip
    by_ip = {"machine": "spin24", "address": address}
    off = admin.put("admin/board", params=by_cfb, data="false",
                    headers={"Content-Type": "text/plain"})  # fmt: skip
    assert (off.status_code, off.text) == (200, "false")
    assert admin.get("admin/board", params=where).text == "false"
    assert admin.get("admin/board", params=by_ip).text == "false"
    assert admin.put("admin/board", params=where, data="maybe").status_code == 400
    none = admin.get("admin/board", params={"machine": "spin24"})
    assert none.status_code == 400 and "x=&y=&z=" in none.text
    assert (
        admin.get("admin/board", params={"machine": "spin24", "x": 99, "y": 0, "z": 0}).status_code
        == 404
    )
    assert (
        admin.get("admin/board", params={"machine": "nope", "x": 0, "y": 0, "z": 0}).status_code
        == 404
    )

    alice = login(service, "alice")
    refused = alice.create(board={"x": 0, "y": 0, "z": 0})
    assert refused.status_code == 400 and "no machine available" in refused.text
    job = alice.create(**{"num-boards": 24})  # every board: needs the one taken out
    assert job.status_code == 201, job.text
    url = job.headers["location"]
    time.sleep(4 * service.config.allocator_period)
    assert alice.state(url) == "QUEUED"
    on = admin.put("admin/board", params=by_ip, data="true")
    assert on.text == "true"
    wait_for(lambda: alice.state(url) == "READY", 30)
    log = "\n".join(_events(caplog))
    assert '"event":"board_disabled"' in log and '"event":"board_enabled"' in log


def test_import_then_allocate(service: Any, caplog: pytest.LogCaptureFixture) -> None:
    """An imported machine is served at once: listed, allocated on, retagged, and taken
    out of and back into service."""
    caplog.set_level(logging.INFO, logger="pyspalloc.audit")
    admin = login(service, "root")
    assert admin.get("admin/import").text == "This resource only really supports POST."
    assert (
        admin.post(
            "admin/import", data=b"{nope", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    bad = admin.post("admin/import", json={"machines": [{"name": "x"}]})
    assert bad.status_code == 400 and bad.text.startswith("bad machine definition")
    done = admin.post("admin/import", json=_definition())
    assert done.status_code == 201, done.text
    record = done.json()["imported"][0]
    assert record["name"] == "imported" and record["tags"] == ["imp"] and record["in-service"]
    dup = admin.post("admin/import", json=_definition())
    assert (dup.status_code, dup.text) == (409, "machine imported exists already")
    clash = admin.post("admin/import", json=_definition(name="twin"))
    assert clash.status_code == 409 and clash.text.endswith("of twin is used by imported")
    listed = {m["name"]: m for m in admin.get("admin/machines").json()["machines"]}
    assert listed["imported"]["boards"] == 1 and listed["imported"]["served"] is True
    assert "imported" in [m["name"] for m in admin.get("machines").json()["machines"]]

    alice = login(service, "alice")
    url, _ = alice.ready_job(tags=["imp"])
    assert alice.get(url + "/machine").json()["machine-name"] == "imported"
    assert admin.delete(url).status_code == 204

    out = admin.put("admin/machines/imported/in-service", data="false")
    assert (out.status_code, out.text) == (200, "false")
    assert "imported" not in [m["name"] for m in admin.get("machines").json()["machines"]]
    refused = alice.create(**{"machine-name": "imported"})
    assert refused.status_code in (400, 404), refused.text
    assert admin.put("admin/machines/imported/in-service", data="true").text == "true"
    retag = admin.put("admin/machines/imported/tags", json=["small", "imp2"])
    assert retag.json()["tags"] == ["small", "imp2"]
    assert admin.put("admin/machines/imported/tags", json=[]).status_code == 400
    assert admin.put("admin/machines/nope/tags", json=["a"]).status_code == 404
    url, _ = alice.ready_job(tags=["imp2"])
    assert alice.get(url + "/machine").json()["machine-name"] == "imported"
    log = "\n".join(_events(caplog))
    for event in ("machine_imported", "machine_out_of_service", "machine_in_service",
                  "machine_retagged"):  # fmt: skip
        assert f'"event":"{event}"' in log, event


def test_bearer_token_needs_no_csrf(service: Any) -> None:
    """As in the operator guide's curl example: a bearer token of an ADMIN writes without
    a CSRF token; a USER's token is refused."""
    ctx = service.app.state.ctx
    token = ctx.auth.issue_token(ctx.store.get_user("root"))
    srv = service.url + "srv/spalloc/admin/"
    headers = {"Authorization": f"Bearer {token}"}
    made = requests.post(srv + "groups", json={"groupName": "tok", "quota": 36000},
                         headers=headers, timeout=10)  # fmt: skip
    assert made.status_code == 201, made.text
    off = requests.put(srv + "board", params={"machine": "spin24", "x": 0, "y": 0, "z": 1},
                       data="false", headers={**headers, "Content-Type": "text/plain"},
                       timeout=10)  # fmt: skip
    assert (off.status_code, off.text) == (200, "false")
    user_token = ctx.auth.issue_token(ctx.store.get_user("alice"))
    as_user = {"Authorization": f"Bearer {user_token}"}
    refused = requests.post(srv + "groups", json={"groupName": "tok2"}, headers=as_user, timeout=10)
    assert (refused.status_code, refused.text) == (403, "computer says no")


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/spalloc/srv/spalloc/admin/import", "application/json"),
        ("/spalloc/system/admin/machines/import", "multipart/form-data; boundary=xyz"),
    ],
)
def test_import_body_is_not_read_for_a_user(service: Any, path: str, kind: str) -> None:
    """A USER's upload to either import (REST or web form) is refused on its headers: 403,
    not the 413 that reading the 40 MiB chunked body past the 4 MiB limit would give."""
    from urllib.parse import urlsplit

    from tests.security.http_attack import MIB, post_body

    alice = login(service, "alice")
    headers = {"Cookie": f"JSESSIONID={alice.session_id}", **alice.csrf, "Content-Type": kind}
    port = urlsplit(service.url).port
    assert port is not None
    result = post_body("127.0.0.1", port, path, 40 * MIB, headers, chunked=True, timeout=30)
    assert result.status == 403, result
    assert result.sent < 40 * MIB
