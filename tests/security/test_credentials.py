"""Credentials changed, access kept: a password change, a reset by an admin or disabling
must end the user's other sessions for good (issue 11), against a live service.

Bearer tokens are kept across a password change (they are revoked on their own, with
``pyspalloc user revoke-token``); a disabled user's tokens are refused while disabled.
"""

from __future__ import annotations

from typing import Any

import requests
from click.testing import CliRunner

from pyspalloc.cli.main import main
from pyspalloc.server.auth import digest
from pyspalloc.server.store import Store, TrustLevel
from tests.support.http_client import PASSWORDS, TIMEOUT, Http, login, make_token

SYSTEM = "system/"


def _user_id(service: Any, name: str) -> int:
    store = Store(service.config.database_url())
    try:
        user = store.get_user(name)
    finally:
        store.close()
    assert user is not None
    return user.id


def _admin_action(root: Http, service: Any, name: str, **form: str) -> None:
    url = f"{service.url}{SYSTEM}admin/users/{_user_id(service, name)}"
    response = root.post(url, data=form)
    assert response.status_code == 303, (response.status_code, response.text)


def _bearer_ok(service: Any, token: str) -> bool:
    response = requests.get(
        service.url + "srv/spalloc/jobs",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code in (200, 401), response.status_code
    return response.status_code == 200


def test_own_password_change_ends_every_other_session(make_service: Any) -> None:
    service = make_service()
    token = make_token(service, "alice")
    changer, laptop, phone = (login(service, "alice") for _ in range(3))
    bob = login(service, "bob")
    for client in (changer, laptop, phone):
        assert client.get("jobs").status_code == 200
    changed = changer.post(
        service.url + SYSTEM + "change_password",
        data={"old": PASSWORDS["alice"], "new": "alice-new-pw", "again": "alice-new-pw"},
    )
    assert changed.status_code == 303, changed.text
    # the other sessions are gone: REST 401, and a browser is sent to the login page
    assert laptop.get("jobs").status_code == 401
    page = phone.get(service.url + SYSTEM, headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["location"].endswith("login.html")
    # the session that made the change goes on; other users are untouched
    assert changer.get("jobs").status_code == 200
    assert bob.get("jobs").status_code == 200
    # old password refused, new one accepted; the bearer token is kept (documented choice)
    assert Http(service.url).login("alice").status_code == 401
    assert Http(service.url).login("alice", "alice-new-pw").status_code == 302
    assert _bearer_ok(service, token)


def test_admin_password_reset_ends_all_sessions_of_the_user(make_service: Any) -> None:
    service = make_service()
    root = login(service, "root")
    sessions = [login(service, "alice") for _ in range(2)]
    basic_before = requests.get(
        service.url + "srv/spalloc/jobs", auth=("alice", PASSWORDS["alice"]), timeout=TIMEOUT
    )
    assert basic_before.status_code == 200
    _admin_action(root, service, "alice", action="password", password="reset-by-root")
    for client in sessions:
        assert client.get("jobs").status_code == 401
    # the verified Basic credential is not remembered past the change
    basic_after = requests.get(
        service.url + "srv/spalloc/jobs", auth=("alice", PASSWORDS["alice"]), timeout=TIMEOUT
    )
    assert basic_after.status_code == 401
    assert Http(service.url).login("alice", "reset-by-root").status_code == 302
    assert root.get("jobs").status_code == 200


def test_disabling_ends_sessions_for_good(make_service: Any) -> None:
    service = make_service()
    root = login(service, "root")
    alice, bob = login(service, "alice"), login(service, "bob")
    token = make_token(service, "alice")
    _admin_action(root, service, "alice", action="disable")
    assert alice.get("jobs").status_code == 401
    assert not _bearer_ok(service, token)
    _admin_action(root, service, "alice", action="enable")
    # re-enabling brings no old session back; a new login works; the token works again
    assert alice.get("jobs").status_code == 401
    assert alice.login("alice").status_code == 302
    assert alice.get("jobs").status_code == 200
    assert _bearer_ok(service, token)
    # the same through the command line (another process writing the database)
    result = CliRunner().invoke(
        main, ["user", "disable", "bob", "--database", service.config.database]
    )
    assert result.exit_code == 0, result.output
    assert bob.get("jobs").status_code == 401
    _admin_action(root, service, "bob", action="enable")
    assert bob.get("jobs").status_code == 401
    assert root.get("jobs").status_code == 200


def test_credential_still_valid_follows_every_change(make_service: Any) -> None:
    """The check long-lived connections (the proxy websocket) make of their caller."""
    service = make_service()
    root = login(service, "root")
    alice = login(service, "alice")
    token = make_token(service, "alice")
    key = digest(alice.session_id or "")
    store = Store(service.config.database_url())
    try:
        found = store.token_for_hash(digest(token))
        assert found is not None
        user, token_id = found
        assert store.credential_still_valid(user.id, TrustLevel.USER, session_key=key)
        assert store.credential_still_valid(user.id, TrustLevel.USER, token_id=token_id)
        assert store.credential_still_valid(
            user.id, TrustLevel.USER, password_hash=user.password_hash
        )
        assert not store.credential_still_valid(user.id, TrustLevel.ADMIN)
        # losing the USER role
        _admin_action(root, service, "alice", action="role", role="READER")
        assert not store.credential_still_valid(user.id, TrustLevel.USER, session_key=key)
        assert store.credential_still_valid(user.id, TrustLevel.READER, session_key=key)
        _admin_action(root, service, "alice", action="role", role="USER")
        # another user's session is not alice's
        bob_key = digest(login(service, "bob").session_id or "")
        assert not store.credential_still_valid(user.id, TrustLevel.USER, session_key=bob_key)
        # revoking the token
        store.revoke_token(token_id)
        assert not store.credential_still_valid(user.id, TrustLevel.USER, token_id=token_id)
        # a password change: the session ends and the old hash no longer matches
        _admin_action(root, service, "alice", action="password", password="another-pw-1")
        assert not store.credential_still_valid(user.id, TrustLevel.USER, session_key=key)
        assert not store.credential_still_valid(
            user.id, TrustLevel.USER, password_hash=user.password_hash
        )
        # disabling
        fresh = Http(service.url)
        assert fresh.login("alice", "another-pw-1").status_code == 302
        fresh_key = digest(fresh.session_id or "")
        assert store.credential_still_valid(user.id, TrustLevel.USER, session_key=fresh_key)
        _admin_action(root, service, "alice", action="disable")
        assert not store.credential_still_valid(user.id, TrustLevel.READER)
    finally:
        store.close()


def test_a_login_racing_a_password_change_or_disabling_gets_no_session(
    make_service: Any,
) -> None:
    """A password verified just before the change must not yield a session after it."""
    service = make_service()
    store = Store(service.config.database_url())
    try:
        before = store.get_user("alice")
        assert before is not None and before.password_hash is not None
        assert store.create_session("a" * 64, "csrf", before.id, password_hash=before.password_hash)
        store.update_user("alice", password_hash=before.password_hash + "x")  # changed
        assert not store.create_session(
            "b" * 64, "csrf", before.id, password_hash=before.password_hash
        )
        assert store.get_session("a" * 64, 60.0) is None  # and the earlier one ended
        bob = store.get_user("bob")
        assert bob is not None
        store.update_user("bob", disabled=True)
        assert not store.create_session("c" * 64, "csrf", bob.id, password_hash=bob.password_hash)
        store.update_user("bob", disabled=False)
        assert store.create_session("d" * 64, "csrf", bob.id, password_hash=bob.password_hash)
    finally:
        store.close()
