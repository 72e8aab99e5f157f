"""The audit log (issue 11): logins, failures, logouts, password changes, admin actions
and job creation/destruction appear on ``pyspalloc.audit`` as one JSON object per line,
from a live service driven over HTTP."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
import requests

from pyspalloc.server.store import Store
from tests.support.http_client import PASSWORDS, TIMEOUT, Http, login

SYSTEM = "system/"
ADMIN = SYSTEM + "admin/"


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    found = []
    for record in caplog.records:
        if record.name == "pyspalloc.audit":
            message = record.getMessage()
            assert "\n" not in message and "\r" not in message, message
            found.append(json.loads(message))
    return found


def _has(events: list[dict[str, Any]], event: str, **fields: Any) -> bool:
    return any(
        e["event"] == event and all(e.get(k) == v for k, v in fields.items()) for e in events
    )


def test_audit_lines_for_logins_admin_actions_and_jobs(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pyspalloc.audit")
    service = make_service(emergency_code="stop-now")
    here = "127.0.0.1"
    store = Store(service.config.database_url())
    try:
        alice_id = store.get_user("alice").id  # type: ignore[union-attr]
        machine = store.machines()[0]
        board_id = store.boards(machine.id)[0].id
    finally:
        store.close()

    # logins: a form login, a failed one, a Basic one, a forged name with a line break
    alice = login(service, "alice")
    assert Http(service.url).login("bob", "wrong").status_code == 401
    srv = service.url + "srv/spalloc/"
    assert requests.get(srv, auth=("rita", PASSWORDS["rita"]), timeout=TIMEOUT).status_code == 200
    forged = base64.b64encode(b"eve\r\n{'event' 'login'}:pw").decode()
    assert (
        requests.get(srv, headers={"Authorization": f"Basic {forged}"}, timeout=TIMEOUT).status_code
        == 401
    )

    # jobs: created and destroyed over REST, and destroyed from the web interface
    first = alice.create(**{"num-boards": 1})
    second = alice.create(**{"num-boards": 1})
    assert first.status_code == second.status_code == 201
    first_id, second_id = first.json()["job-id"], second.json()["job-id"]
    assert alice.delete(first.headers["location"], params={"reason": "done"}).status_code == 204
    gone = alice.post(f"{service.url}{SYSTEM}delete_job/{second_id}", data={"reason": "web"})
    assert gone.status_code == 303

    # password change and logout
    changed = alice.post(
        service.url + SYSTEM + "change_password",
        data={"old": PASSWORDS["alice"], "new": "alice-pw-new", "again": "alice-pw-new"},
    )
    assert changed.status_code == 303
    assert alice.post(service.url + SYSTEM + "perform_logout").status_code == 302

    # admin actions
    root = login(service, "root")

    def admin(path: str, **form: str) -> requests.Response:
        response = root.post(service.url + ADMIN + path, data=form)
        assert response.status_code == 303, (path, form, response.text)
        return response

    admin("users", username="carol", password="carol-pw-1", role="READER")
    for form in (
        {"action": "disable"},
        {"action": "enable"},
        {"action": "role", "role": "READER"},
        {"action": "password", "password": "alice-reset-1"},
        {"action": "unlock"},
    ):
        admin(f"users/{alice_id}", **form)
    made = admin("groups", name="team", quota="10")
    group_id = int(made.headers["location"].split("?")[0].rsplit("/", 1)[1])
    admin(f"groups/{group_id}", action="add", username="bob")
    admin(f"groups/{group_id}", action="remove", username="bob")
    admin(f"boards/{board_id}", action="disable")
    admin(f"boards/{board_id}", action="enable")
    stop = root.get("emergencyStop", params={"commandCode": "stop-now"})
    assert stop.status_code == 200

    events = _events(caplog)
    assert all(isinstance(e["time"], float) for e in events)
    expected: list[tuple[str, dict[str, Any]]] = [
        ("login", {"user": "alice", "method": "form", "address": here}),
        ("login_failed", {"user": "bob", "method": "form", "reason": "bad_password"}),
        ("login", {"user": "rita", "method": "basic", "address": here}),
        ("login_failed", {"user": "eve\r\n{'event' 'login'}", "reason": "unknown_user"}),
        ("job_created", {"user": "alice", "job": first_id, "owner": "alice", "address": here}),
        ("job_destroyed", {"user": "alice", "job": first_id, "reason": "done"}),
        ("job_destroyed", {"user": "alice", "job": second_id, "reason": "web"}),
        ("password_changed", {"user": "alice", "target": "alice", "address": here}),
        ("logout", {"user": "alice", "address": here}),
        ("user_created", {"user": "root", "target": "carol", "role": "READER"}),
        ("user_disabled", {"user": "root", "target": "alice"}),
        ("user_enabled", {"user": "root", "target": "alice"}),
        ("user_role", {"user": "root", "target": "alice", "role": "READER"}),
        ("user_password_reset", {"user": "root", "target": "alice"}),
        ("user_unlocked", {"user": "root", "target": "alice"}),
        ("group_created", {"user": "root", "group": "team", "quota": 36000.0}),
        ("group_member_added", {"user": "root", "group": group_id, "target": "bob"}),
        ("group_member_removed", {"user": "root", "group": group_id, "target": "bob"}),
        ("board_disabled", {"user": "root", "board": board_id, "machine": machine.name}),
        ("board_enabled", {"user": "root", "board": board_id}),
        ("emergency_stop", {"user": "root", "address": here}),
    ]
    missing = [(event, fields) for event, fields in expected if not _has(events, event, **fields)]
    assert not missing, (missing, events)
    # nothing secret is logged
    text = "\n".join(json.dumps(e) for e in events)
    for secret in (*PASSWORDS.values(), "alice-pw-new", "alice-reset-1", "carol-pw-1", "wrong"):
        assert secret not in text
