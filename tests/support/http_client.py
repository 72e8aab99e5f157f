"""A plain REST client of the service for tests: form login, CSRF header, bearer, JSON;
and bearer tokens issued through ``pyspalloc user token``."""

from __future__ import annotations

import re
from typing import Any

import requests
from click.testing import CliRunner

from pyspalloc.cli.main import main
from tests.support.waiting import wait_for

CSRF_INPUT = re.compile(r'<input type="hidden" name="_csrf" value="(.*)" />')
TIMEOUT = 30.0
#: the users the ``make_service`` fixture (tests/conftest.py) creates
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "root": "root-pw-3", "rita": "rita-pw-4"}


class Http:
    """A plain HTTP session against ``base`` (``.../spalloc/``): login, CSRF, JSON."""

    def __init__(self, base: str, verify: bool | str = True, timeout: float = TIMEOUT) -> None:
        self.base = base
        self.srv = base + "srv/spalloc/"
        self.timeout = timeout
        self.http = requests.Session()
        self.http.verify = verify
        self.http.trust_env = False  # else REQUESTS_CA_BUNDLE overrides ``verify``
        self.csrf: dict[str, str] = {}
        self.bearer: str | None = None

    def login(self, user: str, password: str | None = None) -> requests.Response:
        """Log in through the form (password from ``PASSWORDS`` unless given)."""
        page = self.http.get(self.base + "system/login.html", timeout=self.timeout)
        match = CSRF_INPUT.search(page.text)
        assert match, page.text
        response = self.http.post(
            self.base + "system/perform_login",
            data={
                "_csrf": match.group(1),
                "username": user,
                "password": PASSWORDS[user] if password is None else password,
                "submit": "submit",
            },
            allow_redirects=False,
            timeout=self.timeout,
        )
        if response.status_code == 302:
            self.describe()
        return response

    def describe(self) -> dict[str, Any]:
        """The service description; remembers its CSRF header."""
        response = self.http.get(self.srv, timeout=self.timeout)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        self.csrf = {body["csrf-header"]: body["csrf-token"]}
        return body

    @property
    def session_id(self) -> str | None:
        return self.http.cookies.get("JSESSIONID")

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        """``url`` (absolute, or relative to ``srv``) with CSRF (not on GET) and bearer."""
        headers = dict(self.csrf) if method != "GET" else {}
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        headers.update(kw.pop("headers", None) or {})
        full = url if "://" in url else self.srv + url
        return self.http.request(
            method, full, headers=headers, timeout=self.timeout, allow_redirects=False, **kw
        )

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> requests.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> requests.Response:
        return self.request("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", url, **kw)

    def create(self, **body: Any) -> requests.Response:
        """POST a job (tags ``default`` and a 60 s keepalive unless given)."""
        body.setdefault("keepalive-interval", "PT60S")
        if "machine-name" not in body and "tags" not in body:
            body["tags"] = ["default"]
        return self.post("jobs", json=body)

    def state(self, job_url: str) -> str:
        response = self.get(job_url)
        assert response.status_code == 200, (response.status_code, response.text)
        return str(response.json()["state"])

    def ready_job(self, timeout: float = 40.0, **request: Any) -> tuple[str, dict[str, Any]]:
        """Create a job, wait for READY; return its URL and state JSON."""
        created = self.create(**request)
        assert created.status_code == 201, created.text
        url = created.headers["location"]

        def ready() -> dict[str, Any] | None:
            body: dict[str, Any] = self.get(url).json()
            return body if body["state"] == "READY" else None

        return url, wait_for(ready, timeout)


def login(service: Any, user: str, timeout: float = TIMEOUT) -> Http:
    """An ``Http`` client of ``service`` logged in as ``user``."""
    client = Http(service.url, timeout=timeout)
    response = client.login(user)
    assert response.status_code == 302, (response.status_code, response.text)
    return client


def make_token(service: Any, user: str) -> str:
    """Issue a bearer token for ``user`` with ``pyspalloc user token``."""
    result = CliRunner().invoke(
        main, ["user", "token", user, "--database", service.config.database]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert len(token) >= 32
    return token
