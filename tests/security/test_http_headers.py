"""The HTTP surface of a live service: security headers, the API docs page, logout,
forged ``Host`` names and the permissions of the files the service creates.

Each test fails on the code before the fix: no security headers, Swagger UI from a CDN,
``GET perform_logout`` logged out, a forged ``Host`` came back in job URLs, and the data
directory and database were created with the umask's 0755/0644.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
import urllib3

from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.runner import start_service
from tests.reliability.serve_process import ServeProcess, make_users
from tests.support.http_client import Http, login

HTML_PAGES = ["system/login.html", "system/", "system/list_jobs", "srv/swagger"]
FORGED = "evil.example"


def _check_html_headers(response: requests.Response) -> None:
    headers = response.headers
    assert response.headers["content-type"].startswith("text/html"), response.url
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, response.url
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp, response.url
    assert headers.get("x-frame-options") == "DENY", response.url
    assert headers.get("x-content-type-options") == "nosniff", response.url
    assert headers.get("referrer-policy") == "same-origin", response.url


def test_html_pages_carry_security_headers(make_service: Callable[..., Any]) -> None:
    service = make_service()
    alice = login(service, "alice")
    for page in HTML_PAGES:
        response = alice.http.get(service.url + page, timeout=30)
        assert response.status_code == 200, (page, response.status_code)
        _check_html_headers(response)
        assert "strict-transport-security" not in response.headers  # plain HTTP
    api = alice.get("machines")
    assert api.headers.get("x-content-type-options") == "nosniff"
    # the pages themselves keep to their policy: no inline script or style (the machine
    # and job pages with a job's coloured legend too)
    url, _ = alice.ready_job(**{"num-boards": 1})
    job = url.rsplit("/", 1)[1]
    pages = ["system/login.html", "system/", "system/machine_info/spin24", f"system/job_info/{job}"]
    for page in pages:
        text = alice.http.get(service.url + page, timeout=30).text
        if "_info/" in page:
            assert 'class="swatch"' in text, page  # the legend is there, without style=
        assert "<style" not in text and "style=" not in text, page
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), page


def test_hsts_under_tls(make_service: Callable[..., Any]) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    service = make_service(self_signed=True)
    assert service.url.startswith("https://")
    response = requests.get(service.url + "system/login.html", verify=False, timeout=30)
    _check_html_headers(response)
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_api_docs_page_loads_nothing_from_other_sites(make_service: Callable[..., Any]) -> None:
    service = make_service()
    page = requests.get(service.url + "srv/swagger", timeout=30)
    assert page.status_code == 200
    _check_html_headers(page)
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(references) >= 3, page.text  # styles, Swagger UI, the starter script
    for reference in references:
        absolute = urljoin(page.url, reference)
        assert urlsplit(absolute).netloc == urlsplit(page.url).netloc, reference
        asset = requests.get(absolute, timeout=30)
        assert asset.status_code == 200, reference
        assert len(asset.content) > 100, reference
    starter = requests.get(urljoin(page.url, "/spalloc/system/resources/swagger-init.js"))
    assert "validatorUrl: null" in starter.text  # no badge from validator.swagger.io
    assert "openapi" in requests.get(service.url + "srv/openapi.json", timeout=30).json()


def test_logout_only_by_post_with_csrf(make_service: Callable[..., Any]) -> None:
    service = make_service()
    alice = login(service, "alice")
    # a GET (a link or image on another site) shows a form and does not log out
    page = alice.http.get(service.url + "system/perform_logout", timeout=30)
    assert page.status_code == 200
    assert 'method="POST"' in page.text and 'name="_csrf"' in page.text
    assert alice.get("machines").status_code == 200
    # a POST without the token is refused, and does not log out either
    refused = alice.http.post(
        service.url + "system/perform_logout", allow_redirects=False, timeout=30
    )
    assert refused.status_code == 403
    assert alice.get("machines").status_code == 200
    out = alice.post(service.url + "system/perform_logout")  # X-CSRF-TOKEN
    assert out.status_code == 302
    assert alice.get("machines").status_code == 401


def _urls(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [u for v in value.values() for u in _urls(v)]
    if isinstance(value, list):
        return [u for v in value for u in _urls(v)]
    return [value] if isinstance(value, str) and "://" in value else []


def test_forged_host_never_steers_urls(make_service: Callable[..., Any]) -> None:
    service = make_service()
    port = urlsplit(service.url).port
    alice = login(service, "alice")
    cookie = f"JSESSIONID={alice.session_id}"
    # (requests matches cookies to the Host header: give the cookie explicitly)
    forged = {"Host": f"{FORGED}:{port}", "Cookie": cookie}
    created = alice.post("jobs", json={"num-boards": 1, "keepalive-interval": "PT60S",
                                       "tags": ["default"]}, headers=forged)  # fmt: skip
    assert FORGED not in created.text and FORGED not in str(created.headers)
    assert created.status_code == 400, created.text
    for path in ("", "jobs", "machines", "machines/spin24"):
        answer = alice.get(path, headers=forged)
        assert FORGED not in answer.text and FORGED not in str(answer.headers), path
        assert answer.status_code == 400, (path, answer.status_code)
    assert alice.get("jobs").json()["jobs"] == []  # the forged create made nothing
    made = alice.create(**{"num-boards": 1})
    assert made.status_code == 201
    assert made.headers["location"].startswith(f"http://127.0.0.1:{port}/")
    state = alice.get(made.headers["location"], headers=forged)
    assert FORGED not in state.text and state.status_code == 400
    # the proxy websocket handshake with a forged Host is refused too
    job_id = made.json()["job-id"]
    assert port is not None
    assert _handshake(port, f"/spalloc/proxy/{job_id}", forged["Host"], cookie) == 403


def test_allowed_host_option_names_the_service(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    service = ServeProcess(tmp_path, database).start("--allowed-host", "spalloc.example")
    try:
        alice = Http(service.url)
        assert alice.login("alice").status_code == 302
        made = alice.create(**{"num-boards": 1})
        assert made.status_code == 201
        # (requests matches cookies to the Host header: give the cookie explicitly)
        named = {"Host": f"spalloc.example:{service.port}",
                 "Cookie": f"JSESSIONID={alice.session_id}"}  # fmt: skip
        state = alice.get(made.headers["location"], headers=named)
        assert state.status_code == 200
        listed = alice.get("jobs", headers=named).json()
        urls = _urls(state.json()) + _urls(listed)
        assert urls and all(urlsplit(u).hostname == "spalloc.example" for u in urls), urls
        other = alice.get("jobs", headers={**named, "Host": f"{FORGED}:{service.port}"})
        assert other.status_code == 400
    finally:
        service.stop()


def _handshake(port: int, path: str, host: str, cookie: str) -> int:
    """Send a websocket handshake with ``Host: host``; return the HTTP status."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {cookie}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request.encode())
        reply = b""
        while b"\r\n" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    return int(reply.split(b" ", 2)[1])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_database_and_data_directory_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        data = tmp_path / "new" / "data"
        service = start_service(
            ServiceConfig(
                port=0,
                data_dir=data,
                machines=["spin24"],
                controller="instant",
            )
        )
    finally:
        os.umask(old)
    try:
        assert requests.get(service.url + "system/login.html", timeout=30).status_code == 200
        database = data / "spalloc.sqlite3"
        assert _mode(data) == 0o700
        assert _mode(database) == 0o600
        for suffix in ("-wal", "-shm"):
            side = data / ("spalloc.sqlite3" + suffix)
            if side.exists():
                assert _mode(side) == 0o600, suffix
    finally:
        service.stop()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_default_names_are_allowed(make_service: Callable[..., Any], host: str) -> None:
    service = make_service()
    port = urlsplit(service.url).port
    answer = requests.get(f"http://{host}:{port}/spalloc/system/login.html", timeout=30)
    assert answer.status_code == 200
