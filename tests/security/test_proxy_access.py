"""Who may keep a proxy websocket: the USER role, a still-valid credential, and a page of
the service's own origin.

A websocket opened with a session, bearer token or Basic credentials closes within a few
seconds when its user is disabled or loses the USER role, logs out, or has the token
revoked; a READER who owns a job is refused; a cross-site ``Origin`` is refused.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from pyspalloc.server.auth import digest, new_secret
from pyspalloc.server.store import Store, TrustLevel
from pyspalloc.wire.proxy import OpenReply, OpenRequest
from tests.reliability.serve_process import ServeProcess, make_users
from tests.reliability.support import recv_frame
from tests.support.http_client import PASSWORDS, Http, login

#: how soon a websocket must close after its credential stops being valid
CLOSE_WITHIN = 5.0


@pytest.fixture
def store(vservice: Any) -> Iterator[Store]:
    """The service's database, as an administrator's tool would change it."""
    opened = Store(vservice.config.database_url())
    yield opened
    opened.close()


def _ws(proxy: str, headers: dict[str, str]) -> ClientConnection:
    ws = connect(proxy, additional_headers=headers, open_timeout=10, close_timeout=5)
    return ws.__enter__()


def _cookie(client: Http) -> dict[str, str]:
    return {"Cookie": f"JSESSIONID={client.session_id}"}


def _works(ws: ClientConnection) -> None:
    ws.send(OpenRequest(1, 0, 0, 17893).to_bytes())
    assert isinstance(recv_frame(ws), OpenReply)


def _closes(ws: ClientConnection, within: float = CLOSE_WITHIN) -> tuple[float, str | None]:
    """Wait for the service to close ``ws``; return how long it took and the reason."""
    start = time.monotonic()
    deadline = start + within
    try:
        while time.monotonic() < deadline:
            try:
                ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
    except ConnectionClosed:
        return time.monotonic() - start, ws.close_reason
    ws.close()
    raise AssertionError(f"the websocket was still open {within} s later")


def _ready_proxy(client: Http) -> tuple[str, str]:
    url, _ = client.ready_job(60.0, **{"num-boards": 1})
    return url, str(client.get(url).json()["proxy-ref"])


def _check_closes_after(
    vservice: Any, headers_of: Callable[[Http], dict[str, str]], change: Callable[[Http], None]
) -> None:
    alice = login(vservice, "alice")
    _, proxy = _ready_proxy(alice)
    ws = _ws(proxy, headers_of(alice))
    _works(ws)
    change(alice)
    took, reason = _closes(ws)
    assert reason is not None and "no longer valid" in reason, reason
    assert took < CLOSE_WITHIN


def test_disabled_user_loses_the_proxy(vservice: Any, store: Store) -> None:
    _check_closes_after(vservice, _cookie, lambda _: store.update_user("alice", disabled=True))


def test_user_demoted_to_reader_loses_the_proxy(vservice: Any, store: Store) -> None:
    _check_closes_after(
        vservice, _cookie, lambda _: store.update_user("alice", trust=TrustLevel.READER)
    )


def test_logout_ends_the_proxy(vservice: Any) -> None:
    def logout(alice: Http) -> None:
        out = alice.post(alice.base + "system/perform_logout")
        assert out.status_code == 302, out.text

    _check_closes_after(vservice, _cookie, logout)


def test_revoked_token_ends_the_proxy(vservice: Any, store: Store) -> None:
    user = store.get_user("alice")
    assert user is not None
    token = new_secret(32)
    token_id = store.add_token(user.id, digest(token))
    _check_closes_after(
        vservice,
        lambda _: {"Authorization": f"Bearer {token}"},
        lambda _: store.revoke_token(token_id),
    )


def test_basic_credentials_end_with_the_password(vservice: Any, store: Store) -> None:
    basic = base64.b64encode(f"alice:{PASSWORDS['alice']}".encode()).decode()
    _check_closes_after(
        vservice,
        lambda _: {"Authorization": f"Basic {basic}"},
        lambda _: store.update_user("alice", password_hash="$argon2id$changed-by-admin"),
    )


def test_a_reader_owning_a_job_is_refused(vservice: Any) -> None:
    root = login(vservice, "root")
    created = root.create(owner="rita", **{"num-boards": 1})
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    rita = login(vservice, "rita")
    deadline = time.monotonic() + 60
    while root.state(url) != "READY" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rita.get(url).status_code == 403  # a READER may not even read the job
    proxy = root.get(url).json()["proxy-ref"]
    with pytest.raises(InvalidStatus) as refused:
        _ws(proxy, _cookie(rita))
    assert refused.value.response.status_code == 403


def test_a_foreign_origin_is_refused(vservice: Any) -> None:
    alice = login(vservice, "alice")
    _, proxy = _ready_proxy(alice)
    host = proxy.split("/")[2]
    refused = 0
    for origin in ("http://evil.example", "null", f"https://{host}.evil.example", "evil"):
        with pytest.raises(InvalidStatus) as error:
            _ws(proxy, {**_cookie(alice), "Origin": origin})
        assert error.value.response.status_code == 403
        refused += 1
    assert refused == 4
    # the service's own origin, spinnman's bare host name, and no Origin at all still work
    for headers in ({"Origin": f"http://{host}"}, {"Origin": host.split(":")[0]}, {}):
        ws = _ws(proxy, {**_cookie(alice), **headers})
        _works(ws)
        ws.close()


def test_an_allowed_origin_is_accepted(make_service: Any, machine: Any) -> None:
    from pyspalloc.server.bmp_control import BMPMachineController
    from tests.support.virtual_machines import FAST_BMP

    definition, _ = machine
    service = make_service(
        virtual_address_base=next(iter(definition.bmp_ips.values())),
        instant_controller=BMPMachineController(FAST_BMP),
        allowed_origins=["https://portal.example"],
    )
    alice = login(service, "alice")
    _, proxy = _ready_proxy(alice)
    ws = _ws(proxy, {**_cookie(alice), "Origin": "https://portal.example"})
    _works(ws)
    ws.close()
    with pytest.raises(InvalidStatus):
        _ws(proxy, {**_cookie(alice), "Origin": "https://other.example"})


def test_serve_allowed_origin_option(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    serve = ServeProcess(tmp_path / "data", database)
    serve.start("--allowed-origin", "https://portal.example")
    try:
        alice = Http(serve.url)
        assert alice.login("alice").status_code == 302
        _, proxy = _ready_proxy(alice)
        ws = _ws(proxy, {**_cookie(alice), "Origin": "https://portal.example"})
        ws.close()
        with pytest.raises(InvalidStatus) as refused:
            _ws(proxy, {**_cookie(alice), "Origin": "https://other.example"})
        assert refused.value.response.status_code == 403
    finally:
        serve.stop()
