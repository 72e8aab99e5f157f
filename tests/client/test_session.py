"""Session: login, bearer tokens, CSRF, renewal; against the real service."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pyspalloc.client.session import Session, SpallocHTTPError
from pyspalloc.client.utils import websocket_url
from pyspalloc.exceptions import SpallocException
from pyspalloc.server.store import TrustLevel
from tests.conftest import USERS
from tests.support.http_client import make_token

ALICE_PW = USERS["alice"][0]


def forget_sessions(service: Any) -> None:
    """Make the service forget every HTTP session (as after a restart)."""
    assert service.app.state.ctx.store.purge_sessions(-3600) >= 1


def login(service: Any, user: str = "alice", password: str = ALICE_PW) -> Session:
    session = Session(service.url, user, password)
    session.renew()
    return session


# ---------------------------------------------------------------- pure behaviour


def test_stored_credentials_are_recognised() -> None:
    session = Session(
        "http://127.0.0.1:9/spalloc",
        session_credentials=(
            {"JSESSIONID": "abc"},
            {"X-CSRF-TOKEN": "tok", "Authorization": "Bearer secret", "X-Other": "1"},
        ),
    )
    cookies, headers = session.credentials
    assert cookies == {"JSESSIONID": "abc"}
    assert headers == {"X-CSRF-TOKEN": "tok", "Authorization": "Bearer secret", "X-Other": "1"}
    assert session.can_renew  # the stored bearer token can log in again
    assert session.service_url == "http://127.0.0.1:9/spalloc/"
    assert session.srv_url == "http://127.0.0.1:9/spalloc/srv/spalloc/"


def test_credentials_in_the_url_are_used_and_removed() -> None:
    session = Session("http://u:pw@127.0.0.1:9/spalloc/")
    assert session.service_url == "http://127.0.0.1:9/spalloc/"
    assert session.can_renew


def test_cookie_only_session_cannot_renew() -> None:
    session = Session("http://127.0.0.1:9/", session_credentials=({"JSESSIONID": "x"}, {}))
    assert not session.can_renew
    with pytest.raises(SpallocException, match="cannot renew"):
        session.renew()


@pytest.mark.parametrize(
    ("service", "url", "expected"),
    [
        ("http://h:1/spalloc/", "wss://h:1/spalloc/proxy/3", "ws://h:1/spalloc/proxy/3"),
        ("https://h:1/spalloc/", "wss://h:1/spalloc/proxy/3", "wss://h:1/spalloc/proxy/3"),
        ("http://h:1/spalloc/", "wss://other:1/proxy/3", "wss://other:1/proxy/3"),
        ("http://h:1/spalloc/", "http://h:1/spalloc/proxy/3", "ws://h:1/spalloc/proxy/3"),
        ("https://h/spalloc/", "https://h/spalloc/proxy/3", "wss://h/spalloc/proxy/3"),
        ("http://h:1/spalloc/", "ws://h:1/spalloc/proxy/3", "ws://h:1/spalloc/proxy/3"),
    ],
)
def test_websocket_url_scheme(service: str, url: str, expected: str) -> None:
    assert websocket_url(url, service) == expected


def test_purged_session_is_unusable() -> None:
    session = Session("http://127.0.0.1:9/", "u", "p")
    session.purge()
    assert session.credentials == ({}, {})
    with pytest.raises(SpallocException, match="closed"):
        session.get("http://127.0.0.1:9/")


# ---------------------------------------------------------------- against the service


def test_password_login_gets_cookie_and_csrf(service: Any) -> None:
    session = Session(service.url, "alice", ALICE_PW)
    description = session.renew()
    assert "csrf-token" not in description
    assert description["jobs-ref"].startswith(service.url)
    cookies, headers = session.credentials
    assert set(cookies) == {"JSESSIONID"}
    assert set(headers) == {"X-CSRF-TOKEN"}
    reply = session.get(session.srv_url)
    assert reply.json()["machines-ref"] == description["machines-ref"]


def test_wrong_password_is_refused(service: Any) -> None:
    with pytest.raises(SpallocException, match="Unable to login"):
        Session(service.url, "alice", "not-the-password").renew()


def test_bearer_token_login(service: Any) -> None:
    token = make_token(service, "bob")
    session = Session(service.url, token=token)
    description = session.renew()
    assert "jobs-ref" in description
    _, headers = session.credentials
    assert headers["Authorization"] == f"Bearer {token}"
    # a state-changing request works with the bearer token
    reply = session.post(
        description["jobs-ref"],
        {"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]},
    )
    assert reply.status_code == 201
    job_url = reply.headers["Location"]
    assert session.get(job_url).json()["owner"] == "bob"
    assert session.delete(job_url, reason="test").status_code == 204


def test_bad_bearer_token_is_refused(service: Any) -> None:
    with pytest.raises(SpallocException):
        Session(service.url, token="no-such-token").renew()


def test_get_renews_after_the_service_forgets_the_session(service: Any) -> None:
    session = login(service)
    old_cookie = session.credentials[0]["JSESSIONID"]
    forget_sessions(service)
    reply = session.get(session.srv_url)
    assert reply.status_code == 200
    assert session.credentials[0]["JSESSIONID"] != old_cookie


def test_write_renews_after_a_csrf_failure(service: Any) -> None:
    session = login(service)
    jobs = session.get(session.srv_url).json()["jobs-ref"]
    forget_sessions(service)
    # the dead session fails the CSRF check (403); the session logs in again
    reply = session.post(
        jobs, {"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]}
    )
    assert reply.status_code == 201
    assert session.delete(reply.headers["Location"]).status_code == 204


def test_stale_csrf_token_is_refreshed(service: Any) -> None:
    session = login(service)
    jobs = session.get(session.srv_url).json()["jobs-ref"]
    session._csrf_token = "stale"
    reply = session.post(
        jobs, {"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]}
    )
    assert reply.status_code == 201
    assert session.credentials[1]["X-CSRF-TOKEN"] != "stale"
    session.delete(reply.headers["Location"])


def test_bearer_session_renews_too(service: Any) -> None:
    token = make_token(service, "alice")
    session = Session(service.url, token=token)
    jobs = session.renew()["jobs-ref"]
    forget_sessions(service)
    assert session.get(jobs).status_code == 200
    reply = session.post(
        jobs, {"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]}
    )
    assert reply.status_code == 201
    session.delete(reply.headers["Location"])


def test_stored_session_without_csrf_fetches_it(service: Any) -> None:
    original = login(service)
    jobs = original.get(original.srv_url).json()["jobs-ref"]
    cookies, _ = original.credentials
    restored = Session(service.url, session_credentials=(cookies, {}))
    reply = restored.post(
        jobs, {"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]}
    )
    assert reply.status_code == 201
    assert "X-CSRF-TOKEN" in restored.credentials[1]
    restored.delete(reply.headers["Location"])


def test_role_refusal_is_not_retried_as_a_session_loss(service: Any) -> None:
    store = service.app.state.ctx.store
    from pyspalloc.server.auth import hash_password

    store.create_user("reader", hash_password("reader-pw"), TrustLevel.READER)
    session = login(service, "reader", "reader-pw")
    jobs = session.get(session.srv_url).json()["jobs-ref"]
    cookie = session.credentials[0]["JSESSIONID"]
    with pytest.raises(SpallocHTTPError) as caught:
        session.post(jobs, {"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]})
    assert caught.value.status == 403
    assert session.credentials[0]["JSESSIONID"] == cookie  # no new login


def test_http_errors_are_value_errors_too(service: Any) -> None:
    session = login(service)
    with pytest.raises(ValueError) as caught:
        session.get(session.srv_url + "jobs/999999")
    assert isinstance(caught.value, SpallocHTTPError)
    assert caught.value.status == 404


def test_session_is_shared_by_threads(service: Any) -> None:
    import threading

    session = login(service)
    forget_sessions(service)
    results: list[int] = []

    def fetch() -> None:
        results.append(session.get(session.srv_url).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [200] * 8


def test_websocket_handshake_uses_and_renews_the_session(service: Any) -> None:
    session = login(service)
    jobs = session.get(session.srv_url).json()["jobs-ref"]
    reply = session.post(
        jobs, {"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]}
    )
    job_url = reply.headers["Location"]
    proxy_ref = ""
    for _ in range(100):
        proxy_ref = session.get(job_url).json().get("proxy-ref", "")
        if proxy_ref:
            break
        time.sleep(0.1)
    assert proxy_ref
    ws = session.websocket(proxy_ref)
    assert ws.connected
    ws.close()
    forget_sessions(service)
    ws = session.websocket(proxy_ref)  # refused with the dead cookie, then renewed
    assert ws.connected
    ws.close()
    session.delete(job_url)
