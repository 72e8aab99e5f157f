"""The admin pages added for running a site: delete users and groups, set a group's
quota, import a machine (file upload), take a whole machine in or out of service and
retag it. The same store functions as the admin REST API (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from pyspalloc.geometry import builtin_machine, dump_machine_definitions
from tests.server.web.helpers import SRV, SYSTEM, Browser

ADMIN = SYSTEM + "/admin"


@pytest.fixture
def root(service: Any) -> Iterator[Browser]:
    browser = Browser(service)
    assert browser.login("root").status_code == 302
    yield browser
    browser.close()


def _user_id(page: str, name: str) -> str:
    found = re.search(rf'<tr data-user="{name}">.*?action="[^"]*/users/(\d+)"', page, re.S)
    assert found, page
    return found[1]


def _definition(name: str = "upload") -> bytes:
    machine = dataclasses.replace(builtin_machine("spin5", "127.1.79.0"), name=name, tags=("up",))
    return json.dumps(dump_machine_definitions([machine])).encode()


def test_delete_user(service: Any, root: Browser, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pyspalloc.audit")
    root.page(ADMIN + "/users")
    made = root.form(
        ADMIN + "/users", {"username": "dora", "password": "dora-pw-12", "role": "USER"}
    )
    assert made.status_code == 303
    dora = Browser(service)
    assert dora.login("dora", "dora-pw-12").status_code == 302
    page = root.page(ADMIN + "/users").text
    assert 'aria-label="delete dora"' in page
    gone = root.form(f"{ADMIN}/users/{_user_id(page, 'dora')}", {"action": "delete"})
    assert (gone.status_code, gone.headers["location"]) == (303, ADMIN + "/users?done=user-deleted")
    page = root.page(ADMIN + "/users?done=user-deleted").text
    assert "User deleted." in page and 'data-user="dora"' not in page
    assert dora.page(SYSTEM + "/list_machines").status_code == 302  # her session ended
    myself = root.form(f"{ADMIN}/users/{_user_id(page, 'root')}", {"action": "delete"})
    assert myself.status_code == 400 and "You cannot delete your own account." in myself.text
    alice = Browser(service)
    alice.login("alice")
    alice.create_job(**{"num-boards": 1})
    busy = root.form(f"{ADMIN}/users/{_user_id(page, 'alice')}", {"action": "delete"})
    assert busy.status_code == 409 and "disable the account instead" in busy.text
    assert 'data-user="alice"' in root.page(ADMIN + "/users").text
    assert root.form(f"{ADMIN}/users/{'9' * 30}", {"action": "delete"}).status_code == 400
    assert '"event":"user_deleted"' in "\n".join(r.getMessage() for r in caplog.records)
    alice.close()
    dora.close()


def test_group_quota_and_delete(service: Any, root: Browser) -> None:
    root.page(ADMIN + "/groups")
    made = root.form(ADMIN + "/groups", {"name": "crew", "quota": ""})
    group = made.headers["location"].split("?")[0]
    page = root.page(group).text
    assert "unlimited" in page and "Set quota" in page and "Delete group" in page
    assert root.form(group, {"action": "quota", "quota": "2.5"}).status_code == 303
    assert "2.5 board-hours" in root.page(group).text
    bad = root.form(group, {"action": "quota", "quota": "many"})
    assert bad.status_code == 400 and "number of board-hours" in bad.text
    negative = root.form(group, {"action": "quota", "quota": "-1"})
    assert negative.status_code == 400 and "must not be negative" in negative.text
    assert root.form(group, {"action": "quota", "quota": ""}).status_code == 303
    assert "unlimited" in root.page(group).text
    gone = root.form(group, {"action": "delete"})
    assert (gone.status_code, gone.headers["location"]) == (
        303,
        ADMIN + "/groups?done=group-deleted",
    )
    assert 'data-group="crew"' not in root.page(ADMIN + "/groups").text
    assert root.page(group).status_code == 404
    alice = Browser(service)
    alice.login("alice")
    alice.create_job(**{"num-boards": 1})
    personal = re.search(
        r'<tr data-group="alice"><td><a href="([^"]+)"', root.page(ADMIN + "/groups").text
    )
    assert personal
    root.page(personal[1])
    busy = root.form(personal[1], {"action": "delete"})
    assert busy.status_code == 409 and "job(s) accounted to it" in busy.text
    alice.close()


def test_import_and_machine_service(service: Any, root: Browser) -> None:
    page = root.page(ADMIN + "/machines").text
    assert 'data-machine="spin24"' in page and 'enctype="multipart/form-data"' in page
    upload = {"definition": ("upload.json", _definition(), "application/json")}
    no_token = root.http.post(ADMIN + "/machines/import", files=upload)
    assert no_token.status_code == 403
    done = root.http.post(ADMIN + "/machines/import", data={"_csrf": root.csrf}, files=upload)
    assert (done.status_code, done.headers["location"]) == (
        303,
        ADMIN + "/machines?done=machine-imported",
    )
    page = root.page(ADMIN + "/machines?done=machine-imported").text
    assert "Machine imported" in page and 'data-machine="upload"' in page
    again = root.http.post(ADMIN + "/machines/import", data={"_csrf": root.csrf}, files=upload)
    assert again.status_code == 409 and "Machine upload exists already." in again.text
    junk = {"definition": ("x.json", b"{not json", "application/json")}
    bad = root.http.post(ADMIN + "/machines/import", data={"_csrf": root.csrf}, files=junk)
    assert bad.status_code == 400 and "not valid JSON" in bad.text

    alice = Browser(service)
    alice.login("alice")
    job = alice.create_job(**{"machine-name": "upload"})
    alice.wait_state(job, "READY")

    def listed() -> list[str]:
        reply = alice.http.get(SRV + "/machines", headers={"Accept": "application/json"})
        return [m["name"] for m in reply.json()["machines"]]

    assert "upload" in listed()
    out = root.form(ADMIN + "/machines/upload", {"action": "out-of-service"})
    assert out.status_code == 303
    assert "upload" not in listed()
    assert 'class="out-of-service"' in root.page(ADMIN + "/machines").text
    assert root.form(ADMIN + "/machines/upload", {"action": "in-service"}).status_code == 303
    assert "upload" in listed()
    assert (
        root.form(ADMIN + "/machines/upload", {"action": "retag", "tags": "fast, up2"}).status_code
        == 303
    )
    assert 'value="fast, up2"' in root.page(ADMIN + "/machines").text
    empty = root.form(ADMIN + "/machines/upload", {"action": "retag", "tags": " , "})
    assert empty.status_code == 400
    assert root.form(ADMIN + "/machines/nope", {"action": "in-service"}).status_code == 404

    # not for users, and an anonymous upload is refused before it is read
    assert alice.page(ADMIN + "/machines").status_code == 403
    refused = alice.http.post(ADMIN + "/machines/import", data={"_csrf": alice.csrf}, files=upload)
    assert refused.status_code == 403
    anonymous = Browser(service)
    assert anonymous.http.post(ADMIN + "/machines/import", files=upload).status_code == 302
    alice.close()
    anonymous.close()
