"""Revoking one bearer token (``pyspalloc user revoke-token``) against a running service."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from pyspalloc.cli.main import main
from pyspalloc.server.auth import digest
from pyspalloc.server.store import Store
from tests.server.service_support import SERVICE_TIMEOUT as TIMEOUT


def _cli(service: Any, *args: str) -> str:
    result = CliRunner().invoke(main, ["user", *args, "--database", service.config.database])
    assert result.exit_code == 0, result.output
    return result.output


def _issue(service: Any, user: str) -> tuple[str, int]:
    """Issue a token with the CLI; return it and its id."""
    output = _cli(service, "token", user)
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}\n", output), output
    token = output.strip()
    store = Store(service.config.database)
    try:
        found = store.token_for_hash(digest(token))
    finally:
        store.close()
    assert found is not None and found[0].name == user
    return token, found[1]


def _get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=TIMEOUT, allow_redirects=False)


def _proxy_opens(url: str, token: str) -> bool:
    """Whether the proxy handshake succeeds; a refusal must be an HTTP 401 or 403."""
    try:
        with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10):
            return True
    except InvalidStatus as refused:
        assert refused.response.status_code in (401, 403)
        return False


def test_revoked_token_gets_401_everywhere_and_others_keep_working(service: Any) -> None:
    srv = service.url + "srv/spalloc/"
    doomed, doomed_id = _issue(service, "alice")
    kept, kept_id = _issue(service, "alice")
    assert doomed_id != kept_id
    bearer = {"Authorization": f"Bearer {doomed}"}
    created = requests.post(
        srv + "jobs",
        json={"num-boards": 1, "keepalive-interval": "PT60S", "tags": ["default"]},
        headers=bearer,
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    job_url = created.headers["location"]
    job_id = job_url.rstrip("/").rsplit("/", 1)[-1]
    proxy_url = service.url.replace("http", "ws", 1) + f"proxy/{job_id}"
    # sessions created from the token: by the login page, and by the REST root
    page = _get(service.url + "system/login.html", **bearer)
    assert page.status_code == 200
    page_cookie = f"JSESSIONID={page.cookies['JSESSIONID']}"
    root = _get(srv, **bearer)
    assert root.status_code == 200
    root_cookie = f"JSESSIONID={root.cookies['JSESSIONID']}"
    assert _get(srv, Cookie=page_cookie).status_code == 200
    assert _get(job_url, Cookie=root_cookie).status_code == 200
    assert _get(job_url, **bearer).status_code == 200
    assert _proxy_opens(proxy_url, doomed)

    listed = _cli(service, "tokens", "alice")
    assert str(doomed_id) in listed and str(kept_id) in listed
    revoked = _cli(service, "revoke-token", str(doomed_id))
    assert f"revoked token {doomed_id} of alice" in revoked

    assert _get(srv, **bearer).status_code == 401
    assert _get(srv + "jobs", **bearer).status_code == 401
    assert _get(job_url, **bearer).status_code == 401
    assert (
        requests.put(job_url + "/keepalive", data="x", headers=bearer, timeout=TIMEOUT).status_code
        == 401
    )
    assert not _proxy_opens(proxy_url, doomed)
    # the sessions made from it have ended
    assert _get(srv, Cookie=page_cookie).status_code == 401
    assert _get(job_url, Cookie=root_cookie).status_code == 401
    # and the login page no longer turns it into a logged-in session
    again = _get(service.url + "system/login.html", **bearer)
    assert again.status_code == 200
    assert _get(srv, Cookie=f"JSESSIONID={again.cookies['JSESSIONID']}").status_code == 401

    # the user's other token still works everywhere
    other = {"Authorization": f"Bearer {kept}"}
    assert _get(srv, **other).status_code == 200
    assert _get(job_url, **other).status_code == 200
    assert _proxy_opens(proxy_url, kept)

    listed = _cli(service, "tokens", "alice")
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"(\d+)\s+│[^\n]*", listed)}
    assert set(rows) >= {doomed_id, kept_id}
    assert rows[doomed_id].count("Z") == 2  # created and revoked
    assert rows[kept_id].count("Z") == 1 and "-" in rows[kept_id].split("│")[-2]


def test_revoke_token_cli_errors_and_idempotence(service: Any) -> None:
    token, token_id = _issue(service, "bob")
    result = CliRunner().invoke(
        main, ["user", "revoke-token", "999999", "--database", service.config.database]
    )
    assert result.exit_code != 0 and "no such token" in result.output
    _cli(service, "revoke-token", str(token_id))
    _cli(service, "revoke-token", str(token_id))  # revoking twice is harmless
    assert _get(service.url + "srv/spalloc/", Authorization=f"Bearer {token}").status_code == 401
    missing = CliRunner().invoke(
        main, ["user", "tokens", "nobody", "--database", service.config.database]
    )
    assert missing.exit_code != 0 and "no such user" in missing.output


@pytest.mark.parametrize("revoked_first", [False, True])
def test_store_revocation_survives_reopening(tmp_path: Any, revoked_first: bool) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    store = Store(url)
    user = store.create_user("carol", None)
    token_id = store.add_token(user.id, "h" * 64)
    if revoked_first:
        assert store.revoke_token(token_id) is not None
    store.close()
    store = Store(url)
    try:
        assert (store.user_for_token("h" * 64) is None) is revoked_first
        [info] = store.list_tokens(user.id)
        assert info.id == token_id and (info.revoked is not None) is revoked_first
    finally:
        store.close()
