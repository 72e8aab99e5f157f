"""Login flow, sessions, CSRF, bearer and Basic authentication against a running service."""

from __future__ import annotations

import re
from typing import Any

import requests

from pyspalloc.server.auth import digest, new_secret
from pyspalloc.server.store import Store
from tests.server.service_support import SERVICE_TIMEOUT as TIMEOUT
from tests.support.http_client import CSRF_INPUT, Http


def _login_page(service: Any, **kw: Any) -> requests.Response:
    return requests.get(service.url + "system/login.html", timeout=TIMEOUT, **kw)


def test_login_page_bytes_and_cookie(service: Any) -> None:
    page = _login_page(service)
    assert page.status_code == 200
    assert "JSESSIONID" in page.cookies
    lines = page.text.splitlines()
    hidden = [line for line in lines if 'name="_csrf"' in line and "<input" in line]
    assert len(hidden) == 1
    assert re.fullmatch(r'<input type="hidden" name="_csrf" value="[^"]+" />', hidden[0])
    assert '<form name="f" method="POST" action="/spalloc/system/perform_login">' in page.text
    assert "HttpOnly" in page.headers["set-cookie"]


def test_session_id_changes_at_login_and_old_token_dies(service: Any) -> None:
    http = requests.Session()
    page = http.get(service.url + "system/login.html", timeout=TIMEOUT)
    before = page.cookies["JSESSIONID"]
    token = CSRF_INPUT.search(page.text).group(1)  # type: ignore[union-attr]
    response = http.post(
        service.url + "system/perform_login",
        data={"_csrf": token, "username": "alice", "password": "alice-pw-1", "submit": "submit"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code == 302
    assert response.headers["location"].endswith("/spalloc/system/")
    after = response.cookies["JSESSIONID"]
    assert after and after != before
    described = http.get(service.url + "srv/spalloc/", timeout=TIMEOUT).json()
    assert described["csrf-header"] == "X-CSRF-TOKEN"
    assert described["csrf-token"] != token
    # the pre-login session no longer authenticates anything
    old = requests.get(
        service.url + "srv/spalloc/", cookies={"JSESSIONID": before}, timeout=TIMEOUT
    )
    assert old.status_code == 401


def test_login_failure_is_401_json_without_cookie(service: Any) -> None:
    client = Http(service.url, timeout=TIMEOUT)
    response = client.login("alice", "wrong")
    assert response.status_code == 401
    assert response.json()["message"] == "computer says no"
    assert "timestamp" in response.json()
    assert "JSESSIONID" not in response.cookies


def test_login_without_csrf_is_403(service: Any) -> None:
    http = requests.Session()
    http.get(service.url + "system/login.html", timeout=TIMEOUT)
    response = http.post(
        service.url + "system/perform_login",
        data={"username": "alice", "password": "alice-pw-1"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code == 403


def test_csrf_required_for_cookie_sessions(service: Any) -> None:
    client = Http(service.url, timeout=TIMEOUT)
    assert client.login("alice", "alice-pw-1").status_code == 302
    body = {"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]}
    no_header = client.http.post(client.srv + "jobs", json=body, timeout=TIMEOUT)
    assert no_header.status_code == 403
    wrong = client.http.post(
        client.srv + "jobs", json=body, headers={"X-CSRF-TOKEN": "nope"}, timeout=TIMEOUT
    )
    assert wrong.status_code == 403
    right = client.post("jobs", json=body)
    assert right.status_code == 201


def test_unauthenticated_api_and_browser(service: Any) -> None:
    api = requests.get(service.url + "srv/spalloc/jobs", timeout=TIMEOUT)
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("text/plain")
    challenges = api.headers["www-authenticate"]
    assert 'Basic realm="SpallocService"' in challenges
    assert "Bearer" in challenges
    browser = requests.get(
        service.url + "srv/spalloc/jobs",
        headers={"Accept": "text/html,application/xhtml+xml"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert browser.status_code == 302
    assert browser.headers["location"] == "/spalloc/system/login.html"


def _token_for(service: Any, name: str) -> str:
    store = Store(service.config.database_url())
    try:
        user = store.get_user(name)
        assert user is not None
        token = new_secret()
        store.add_token(user.id, digest(token))
        return token
    finally:
        store.close()


def test_bearer_mode_like_spinnman(service: Any) -> None:
    token = _token_for(service, "alice")
    bearer = {"Authorization": f"Bearer {token}"}
    page = _login_page(service, headers=bearer)
    assert page.status_code == 200
    session_id = page.cookies["JSESSIONID"]
    cookie = {"Cookie": f"JSESSIONID={session_id}"}
    described = requests.get(service.url + "srv/spalloc/", headers=cookie, timeout=TIMEOUT)
    assert described.status_code == 200
    csrf = {described.json()["csrf-header"]: described.json()["csrf-token"]}
    created = requests.post(
        described.json()["jobs-ref"],
        json={"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]},
        headers={**cookie, **csrf, **bearer},
        timeout=TIMEOUT,
    )
    assert created.status_code == 201
    state = requests.get(created.headers["location"], headers=cookie, timeout=TIMEOUT).json()
    assert state["owner"] == "alice"
    # bearer requests are exempt from CSRF
    alone = requests.put(
        created.headers["location"] + "/keepalive",
        data="alive",
        headers=bearer,
        timeout=TIMEOUT,
    )
    assert alone.status_code == 200 and alone.text == "ok"
    bad = requests.get(
        service.url + "srv/spalloc/jobs",
        headers={"Authorization": "Bearer nope"},
        timeout=TIMEOUT,
    )
    assert bad.status_code == 401


def test_basic_auth_reads_and_needs_csrf_to_write(service: Any) -> None:
    http = requests.Session()
    http.auth = ("bob", "bob-pw-2")
    described = http.get(service.url + "srv/spalloc/", timeout=TIMEOUT)
    assert described.status_code == 200
    assert "JSESSIONID" in described.cookies
    body = {"num-boards": 1, "keepalive-interval": 60, "tags": ["default"]}
    plain = requests.post(
        service.url + "srv/spalloc/jobs",
        json=body,
        auth=("bob", "bob-pw-2"),
        timeout=TIMEOUT,
    )
    assert plain.status_code == 403
    with_csrf = http.post(
        service.url + "srv/spalloc/jobs",
        json=body,
        headers={"X-CSRF-TOKEN": described.json()["csrf-token"]},
        timeout=TIMEOUT,
    )
    assert with_csrf.status_code == 201
    wrong = requests.get(service.url + "srv/spalloc/", auth=("bob", "x"), timeout=TIMEOUT)
    assert wrong.status_code == 401


def test_account_locks_after_repeated_failures(make_service: Any) -> None:
    service = make_service(max_login_failures=3, account_lock_duration=60.0)
    for _ in range(3):
        assert Http(service.url, timeout=TIMEOUT).login("bob", "wrong").status_code == 401
    # even the right password is refused while locked
    assert Http(service.url, timeout=TIMEOUT).login("bob", "bob-pw-2").status_code == 401
    assert Http(service.url, timeout=TIMEOUT).login("alice", "alice-pw-1").status_code == 302


def test_disabled_user_cannot_log_in_or_use_session(service: Any) -> None:
    client = Http(service.url, timeout=TIMEOUT)
    assert client.login("bob", "bob-pw-2").status_code == 302
    store = Store(service.config.database_url())
    try:
        store.update_user("bob", disabled=True)
    finally:
        store.close()
    assert client.get("jobs").status_code == 401
    assert Http(service.url, timeout=TIMEOUT).login("bob", "bob-pw-2").status_code == 401


def test_logout_ends_session(service: Any) -> None:
    client = Http(service.url, timeout=TIMEOUT)
    client.login("alice", "alice-pw-1")
    assert client.get("jobs").status_code == 200
    assert client.get(service.url + "system/perform_logout").status_code == 200  # a form
    assert client.get("jobs").status_code == 200  # a GET never logs out
    out = client.post(service.url + "system/perform_logout")  # X-CSRF-TOKEN
    assert out.status_code == 302
    assert client.get("jobs").status_code == 401


def test_index_page_and_root_redirect(service: Any) -> None:
    client = Http(service.url, timeout=TIMEOUT)
    client.login("root", "root-pw-3")
    index = client.get(service.url + "system/")
    assert index.status_code == 200
    assert "root" in index.text and "spin24" in index.text
    root = client.get(service.url, headers={"Accept": "text/html"})
    assert root.status_code == 302
    assert root.headers["location"] == "/spalloc/system/"


def test_bad_bearer_token_does_not_fall_back_to_the_cookie(service: Any) -> None:
    client = Http(service.url, timeout=TIMEOUT)
    assert client.login("alice", "alice-pw-1").status_code == 302
    response = client.http.post(
        client.srv + "jobs",
        json={"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]},
        headers={"Authorization": "Bearer forged"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert client.get("jobs").json()["jobs"] == []
