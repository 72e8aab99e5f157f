"""Every job, power, memory, router and proxy endpoint tried by callers who must not use
them (web-api.md §3.6/§3.7), with the job's state checked afterwards; plus proxy target
checks, argon2-only passwords, session-id rotation, login throttling, and TLS cookies."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pyspalloc.server.auth import digest, new_secret
from pyspalloc.server.store import Store
from pyspalloc.wire.proxy import (
    ErrorReply,
    Message,
    MessageTo,
    OpenReply,
    OpenRequest,
    OpenUnboundReply,
    OpenUnboundRequest,
)
from pyspalloc.wire.scp import SCPResponse
from tests.reliability.support import SCP_PORT, open_ws, recv_frame, udp_socket_count, ver_request
from tests.support.http_client import PASSWORDS, Http, login
from tests.support.waiting import wait_for

ADDRESS = 0x60000000
ORIGINAL = bytes(range(256)) * 4

#: (method, path under the job URL, request keyword arguments)
ENDPOINTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "", {}),
    ("PUT", "/keepalive", {"data": "alive"}),
    ("DELETE", "", {"params": {"reason": "hijacked"}}),
    ("GET", "/machine", {}),
    ("GET", "/machine/power", {}),
    ("POST", "/machine/power", {"json": {"power": "OFF"}}),
    ("GET", "/chip", {"params": {"x": 0, "y": 0}}),
    ("POST", "/report-issue", {"json": {"address": {"x": 0, "y": 0}, "issue": "evil"}}),
    ("GET", "/memory", {"params": {"x": 0, "y": 0, "address": ADDRESS, "size": 16}}),
    (
        "POST",
        "/memory",
        {
            "params": {"x": 0, "y": 0, "address": ADDRESS},
            "data": b"\xee" * 64,
            "headers": {"Content-Type": "application/octet-stream"},
        },
    ),
    ("DELETE", "/router", {}),
]
WRITES = {"POST", "PUT", "DELETE"}


def _snapshot(alice: Http, url: str) -> dict[str, Any]:
    job = alice.get(url).json()
    power = alice.get(url + "/machine/power").json()
    memory = alice.get(
        url + "/memory", params={"x": 0, "y": 0, "address": ADDRESS, "size": len(ORIGINAL)}
    )
    assert memory.status_code == 200
    return {
        "state": job["state"],
        "power": power["power"],
        "boards": alice.get(url + "/machine").json()["boards"],
        "memory": memory.content,
    }


def _disabled_token(service: Any) -> str:
    """A bearer token of a user who is then disabled."""
    from pyspalloc.server.auth import hash_password
    from pyspalloc.server.store import TrustLevel

    store = Store(service.config.database_url())
    try:
        user = store.create_user("mallory", hash_password("mallory-pw"), TrustLevel.USER)
        token = new_secret(32)
        store.add_token(user.id, digest(token))
        store.update_user("mallory", disabled=True)
    finally:
        store.close()
    return token


def _revoked_token(service: Any, url: str) -> str:
    """A bearer token of the job's owner, alice, shown to work and then revoked."""
    store = Store(service.config.database_url())
    try:
        alice = store.get_user("alice")
        assert alice is not None
        token = new_secret(32)
        token_id = store.add_token(alice.id, digest(token))
        works = Http(service.url)
        works.bearer = token
        assert works.get(url).status_code == 200
        assert store.revoke_token(token_id) is not None
    finally:
        store.close()
    return token


def _outcome(client: Http, method: str, url: str, kw: dict[str, Any]) -> int:
    return client.request(method, url, **kw).status_code


def test_job_endpoints_refuse_everyone_but_the_owner(vservice: Any) -> None:
    alice = login(vservice, "alice")
    url, job = alice.ready_job(**{"num-boards": 1})
    posted = alice.post(
        url + "/memory",
        params={"x": 0, "y": 0, "address": ADDRESS},
        data=ORIGINAL,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert posted.status_code == 202, posted.text
    before = _snapshot(alice, url)
    assert before["state"] == "READY" and before["power"] == "ON"

    bob = login(vservice, "bob")
    rita = login(vservice, "rita")  # READER: lacks USER
    anonymous = Http(vservice.url)
    stale = login(vservice, "bob")
    stale_csrf = dict(stale.csrf)
    out = stale.post(vservice.url + "system/perform_logout")
    assert out.status_code == 302
    stale.csrf = stale_csrf
    stale.http.cookies.set("JSESSIONID", "not-a-session", path="/")  # logged-out id dropped
    logged_out = login(vservice, "bob")
    old_cookie = logged_out.session_id
    logged_out.post(vservice.url + "system/perform_logout")
    logged_out.http.cookies.set("JSESSIONID", old_cookie or "", path="/")
    wrong_csrf = login(vservice, "alice")
    wrong_csrf.csrf = {next(iter(wrong_csrf.csrf)): "wrong-token"}
    disabled = Http(vservice.url)
    disabled.bearer = _disabled_token(vservice)
    revoked = Http(vservice.url)
    revoked.bearer = _revoked_token(vservice, url)

    expected: dict[str, Any] = {
        "bob (another user)": (bob, lambda m: 404),
        "rita (reader)": (rita, lambda m: 403),
        "anonymous": (anonymous, lambda m: 403 if m in WRITES else 401),
        "unknown session": (stale, lambda m: 403 if m in WRITES else 401),
        "logged-out session": (logged_out, lambda m: 403 if m in WRITES else 401),
        "wrong csrf": (wrong_csrf, lambda m: 403 if m in WRITES else None),
        "disabled user's token": (disabled, lambda m: 401),
        "owner's revoked token": (revoked, lambda m: 401),
    }
    wrong: list[str] = []
    tried = 0
    for name, (client, status_for) in expected.items():
        for method, suffix, kw in ENDPOINTS:
            want = status_for(method)
            if want is None:
                continue
            got = _outcome(client, method, url + suffix, dict(kw))
            tried += 1
            if got != want:
                wrong.append(f"{name}: {method} {suffix or '/'} -> {got}, expected {want}")
    assert wrong == []
    assert tried >= 70
    after = _snapshot(alice, url)
    assert after == before

    # the proxy handshake: refused for all but the owner
    for client in (bob, rita, anonymous, logged_out, disabled, revoked):
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            ws = open_ws(client, job["proxy-ref"])
            ws.send(OpenRequest(0, 0, 0, SCP_PORT).to_bytes())
            recv_frame(ws, timeout=5)
    # and the owner still can
    with open_ws(alice, job["proxy-ref"]) as ws:
        ws.send(OpenRequest(0, 0, 0, SCP_PORT).to_bytes())
        assert isinstance(recv_frame(ws), OpenReply)


def test_proxy_refuses_boards_outside_the_job_and_closes_at_job_end(vservice: Any) -> None:
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    url, job = alice.ready_job(**{"num-boards": 1})
    bob_url, _ = bob.ready_job(**{"num-boards": 1})
    bob_chips = [tuple(c[0]) for c in bob.get(bob_url + "/machine").json()["connections"]]
    before = udp_socket_count()
    with open_ws(alice, job["proxy-ref"]) as ws:
        outside = [(8, 4), (4, 8), (12, 12), (0, 12), (255, 255), *bob_chips[1:]]
        for corr, (x, y) in enumerate(outside, start=10):
            ws.send(OpenRequest(corr, x, y, SCP_PORT).to_bytes())
            reply = recv_frame(ws)
            assert isinstance(reply, ErrorReply) and reply.correlation_id == corr, reply
            assert "unrecognised ethernet chip" in reply.message
        ws.send(OpenUnboundRequest(1).to_bytes())
        unbound = recv_frame(ws)
        assert isinstance(unbound, OpenUnboundReply)
        for x, y in outside:
            ws.send(MessageTo(unbound.channel_id, x, y, SCP_PORT, ver_request(3)).to_bytes())
            reply = recv_frame(ws)
            assert isinstance(reply, ErrorReply) and "unrecognised" in reply.message
        ws.send(OpenRequest(2, 0, 0, SCP_PORT).to_bytes())
        bound = recv_frame(ws)
        assert isinstance(bound, OpenReply)
        ws.send(Message(bound.channel_id, ver_request(5)).to_bytes())
        answer = recv_frame(ws)
        assert isinstance(answer, Message) and SCPResponse.from_bytes(answer.payload).sequence == 5
        assert udp_socket_count() == before + 2
        assert alice.delete(url, params={"reason": "over"}).status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                recv_frame(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    wait_for(lambda: udp_socket_count() == before, 10)


def test_passwords_are_argon2_and_sessions_rotate(make_service: Any) -> None:
    service = make_service()
    db = service.config.database_url().removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(users)")]
        rows = conn.execute("SELECT * FROM users").fetchall()
        dump = "\n".join(conn.iterdump())
    hashes = [row[columns.index("password_hash")] for row in rows]
    assert len(hashes) == 4 and all(h.startswith("$argon2id$") for h in hashes)
    for password in PASSWORDS.values():
        assert password not in dump
    client = Http(service.url)
    client.http.get(service.url + "system/login.html")
    first = client.session_id
    assert first
    assert client.login("alice").status_code == 302
    second = client.session_id
    assert second and second != first
    assert client.get("").status_code == 200
    # the pre-login session id is no longer an identity
    old = Http(service.url)
    old.http.cookies.set("JSESSIONID", first, path="/")
    assert old.get("jobs").status_code == 401
    # session ids and tokens are stored hashed
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert second not in dump and first not in dump


def test_login_attempts_are_limited(make_service: Any) -> None:
    service = make_service(max_login_failures=3, max_ip_failures=8, ip_failure_window=60)
    client = Http(service.url)
    statuses = [client.login("bob", "wrong").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    # locked: the right password is refused too
    assert Http(service.url).login("bob").status_code == 401
    # per-address throttle: other accounts, wrong passwords, then even a right one
    for n in range(6):
        Http(service.url).login("alice", f"wrong-{n}")
    assert Http(service.url).login("root").status_code in (401, 429)


def test_session_cookie_is_secure_and_httponly_under_tls(make_service: Any) -> None:
    service = make_service(self_signed=True)
    assert service.url.startswith("https://")
    client = Http(service.url, verify=str(service.cert_file))
    page = client.http.get(service.url + "system/login.html", timeout=10)
    assert page.status_code == 200
    response = client.login("alice")
    assert response.status_code == 302
    cookies = [v for k, v in response.raw.headers.items() if k.lower() == "set-cookie"]
    assert cookies, response.headers
    for cookie in cookies:
        if cookie.startswith("JSESSIONID="):
            flags = {part.strip().lower() for part in cookie.split(";")}
            assert "secure" in flags and "httponly" in flags, cookie
    assert any(c.startswith("JSESSIONID=") for c in cookies)
    plain = Http(service.url, verify=str(service.cert_file))
    assert plain.get("").status_code == 401


def test_expired_session_is_refused_and_changes_nothing(make_service: Any) -> None:
    service = make_service(session_timeout=2.0)
    alice = login(service, "alice")
    created = alice.create(**{"num-boards": 1})
    assert created.status_code == 201
    url = created.headers["location"]
    wait_for(lambda: alice.state(url) == "READY", 20)
    fresh = login(service, "alice")
    time.sleep(3.0)  # alice's session idles out; ``fresh`` is renewed below
    assert fresh.login("alice").status_code == 302
    before = fresh.get(url).json()
    statuses = {
        (method, suffix): alice.request(method, url + suffix, **dict(kw)).status_code
        for method, suffix, kw in ENDPOINTS
        if suffix not in ("/memory", "/router")  # no board I/O in this instant-power service
    }
    assert statuses == {key: (403 if key[0] in WRITES else 401) for key in statuses}, statuses
    after = fresh.get(url).json()
    assert after["state"] == before["state"] == "READY"
    assert after["keep-alive-time"] == before["keep-alive-time"]
