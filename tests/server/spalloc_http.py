"""A tiny HTTP helper for the service tests: form login, CSRF header, JSON calls."""

from __future__ import annotations

import re
from typing import Any

import requests

CSRF_INPUT = re.compile(r'<input type="hidden" name="_csrf" value="(.*)" />')
TIMEOUT = 40.0


class Client:
    """A logged-in (or bearer) session against ``base`` (``.../spalloc/``)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.srv = base + "srv/spalloc/"
        self.http = requests.Session()
        self.csrf: dict[str, str] = {}
        self.bearer: str | None = None

    def login(self, user: str, password: str) -> requests.Response:
        page = self.http.get(self.base + "system/login.html", timeout=TIMEOUT)
        match = CSRF_INPUT.search(page.text)
        assert match, page.text
        response = self.http.post(
            self.base + "system/perform_login",
            data={
                "_csrf": match.group(1),
                "username": user,
                "password": password,
                "submit": "submit",
            },
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        if response.status_code == 302:
            self.describe()
        return response

    def describe(self) -> dict[str, Any]:
        response = self.http.get(self.srv, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        self.csrf = {body["csrf-header"]: body["csrf-token"]}
        return body

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = dict(self.csrf)
        out.update(extra or {})
        if self.bearer:
            out["Authorization"] = f"Bearer {self.bearer}"
        return out

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.http.get(self._abs(url), timeout=TIMEOUT, allow_redirects=False, **kw)

    def post(self, url: str, **kw: Any) -> requests.Response:
        headers = self.headers(kw.pop("headers", None))
        return self.http.post(
            self._abs(url), headers=headers, timeout=TIMEOUT, allow_redirects=False, **kw
        )

    def put(self, url: str, **kw: Any) -> requests.Response:
        headers = self.headers(kw.pop("headers", None))
        return self.http.put(self._abs(url), headers=headers, timeout=TIMEOUT, **kw)

    def delete(self, url: str, **kw: Any) -> requests.Response:
        headers = self.headers(kw.pop("headers", None))
        return self.http.delete(self._abs(url), headers=headers, timeout=TIMEOUT, **kw)

    def _abs(self, url: str) -> str:
        return url if "://" in url else self.srv + url

    def create(self, **body: Any) -> requests.Response:
        body.setdefault("keepalive-interval", "PT60S")
        if "machine-name" not in body and "tags" not in body:
            body["tags"] = ["default"]
        return self.post("jobs", json=body)
