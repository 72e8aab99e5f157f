"""Helpers of the web UI tests: a browser-like HTTP client (form login, page CSRF tokens)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.conftest import USERS

CSRF_INPUT = re.compile(r'<input type="hidden" name="_csrf" value="([^"]*)" />')
SYSTEM = "/spalloc/system"
SRV = "/spalloc/srv/spalloc"
TIMEOUT = 30.0


class Browser:
    """An HTTP client that behaves like a browser: cookies, ``Accept: text/html``, forms."""

    def __init__(self, service: Any) -> None:
        root = service.url.split("/spalloc/")[0]
        self.http = httpx.Client(base_url=root, headers={"Accept": "text/html"}, timeout=TIMEOUT)
        self.csrf = ""

    def close(self) -> None:
        """Drop the connection pool."""
        self.http.close()

    def login(self, name: str, password: str | None = None) -> httpx.Response:
        """Log in through the form; remember the CSRF token of the new session."""
        if password is None:
            password = USERS[name][0]
        page = self.http.get(SYSTEM + "/login.html")
        match = CSRF_INPUT.search(page.text)
        assert match, page.text
        response = self.http.post(
            SYSTEM + "/perform_login",
            data={"_csrf": match.group(1), "username": name, "password": password},
        )
        if response.status_code == 302:
            self.page(SYSTEM)
        return response

    def page(self, path: str) -> httpx.Response:
        """GET a page and pick up the CSRF token its forms carry."""
        response = self.http.get(path)
        match = CSRF_INPUT.search(response.text)
        if match:
            self.csrf = match.group(1)
        return response

    def form(self, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        """POST a form (with the page's CSRF token unless ``csrf`` is False)."""
        body = dict(data)
        if csrf:
            body["_csrf"] = self.csrf
        return self.http.post(path, data=body)

    # ---- REST, with the same session -------------------------------------------------
    def rest_token(self) -> str:
        """Return the session's CSRF token as the REST root advertises it."""
        body = self.http.get(SRV + "/", headers={"Accept": "application/json"}).json()
        return str(body["csrf-token"])

    def create_job(self, **body: Any) -> int:
        """Create a job on spin24 through the REST API; return its id."""
        body.setdefault("keepalive-interval", "PT60S")
        body.setdefault("machine-name", "spin24")
        response = self.http.post(
            SRV + "/jobs",
            json=body,
            headers={"Accept": "application/json", "X-CSRF-TOKEN": self.rest_token()},
        )
        assert response.status_code == 201, response.text
        return int(response.json()["job-id"])

    def create_job_response(self, **body: Any) -> httpx.Response:
        """Try to create a job; return the raw response."""
        body.setdefault("keepalive-interval", "PT60S")
        body.setdefault("machine-name", "spin24")
        return self.http.post(
            SRV + "/jobs",
            json=body,
            headers={"Accept": "application/json", "X-CSRF-TOKEN": self.rest_token()},
        )

    def job_state(self, job_id: int) -> dict[str, Any]:
        """Return the REST state of a job."""
        response = self.http.get(f"{SRV}/jobs/{job_id}", headers={"Accept": "application/json"})
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    def job_boards(self, job_id: int) -> list[tuple[int, int, int]]:
        """Return the triads the REST API says the job holds."""
        response = self.http.get(
            f"{SRV}/jobs/{job_id}/machine", headers={"Accept": "application/json"}
        )
        assert response.status_code == 200, response.text
        return [(b[0], b[1], b[2]) for b in response.json()["boards"]]

    def wait_state(self, job_id: int, state: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll until the job reaches ``state``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.job_state(job_id)
            if found["state"] == state:
                return found
            assert time.monotonic() < deadline, f"job {job_id} stuck in {found['state']}"
            time.sleep(0.1)


def polygons(html: str) -> list[dict[str, str]]:
    """Return the attributes of every ``<polygon>`` in a page."""
    found = []
    for tag in re.findall(r"<polygon\b[^>]*>", html):
        found.append(dict(re.findall(r'([a-z-]+)="([^"]*)"', tag)))
    return found
