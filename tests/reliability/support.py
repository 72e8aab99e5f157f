"""Shared helpers of the reliability tests: logins, jobs, websockets, socket counts.

Everything is on loopback. Virtual machines use a ``127.1.N.0`` base picked at random
among the N whose BMP and first board addresses are free (other test runs may hold some).
"""

from __future__ import annotations

import os
import random
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from websockets.sync.client import ClientConnection, connect

from pyspalloc.server.bmp_control import BMPControlOptions
from pyspalloc.transceiver.boot import boot_image
from pyspalloc.wire.proxy import decode_server_frame
from pyspalloc.wire.scp import SCPCommand, scp_request

CSRF_INPUT = re.compile(r'<input type="hidden" name="_csrf" value="(.*)" />')
TIMEOUT = 30.0
SCP_PORT = 17893
BOOT_PORT = 54321
# the service boots jobs' boards with our synthetic image (boots virtual boards only)
FAST_BMP = BMPControlOptions(
    retry_delay=0.05, power_timeout=1.0, boot_timeout=10.0, boot_image=boot_image()
)
#: the users the ``make_service`` fixture (tests/conftest.py) creates
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "root": "root-pw-3", "rita": "rita-pw-4"}

T = TypeVar("T")


def free_virtual_base(lo: int = 150, hi: int = 250) -> str:
    """A ``127.1.N.0`` base whose BMP and first two board addresses are free now."""
    for _ in range(60):
        net = random.randrange(lo, hi)
        try:
            for host in (f"127.1.{net}.0", f"127.1.{net}.1", f"127.1.{net}.9"):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.bind((host, SCP_PORT))
        except OSError:
            continue
        return f"127.1.{net}.0"
    raise RuntimeError("no free 127.1.N.0 address range for a virtual machine")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, step: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


class Http:
    """A plain HTTP session against ``base`` (``.../spalloc/``): login, CSRF, JSON."""

    def __init__(self, base: str, verify: bool | str = True) -> None:
        self.base = base
        self.srv = base + "srv/spalloc/"
        self.http = requests.Session()
        self.http.verify = verify
        self.http.trust_env = False  # else REQUESTS_CA_BUNDLE overrides ``verify``
        self.csrf: dict[str, str] = {}
        self.bearer: str | None = None

    def login(self, user: str, password: str | None = None) -> requests.Response:
        page = self.http.get(self.base + "system/login.html", timeout=TIMEOUT)
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

    @property
    def session_id(self) -> str | None:
        return self.http.cookies.get("JSESSIONID")

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        headers = dict(self.csrf) if method != "GET" else {}
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        headers.update(kw.pop("headers", None) or {})
        full = url if "://" in url else self.srv + url
        return self.http.request(
            method, full, headers=headers, timeout=TIMEOUT, allow_redirects=False, **kw
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


def login(service: Any, user: str) -> Http:
    client = Http(service.url)
    response = client.login(user)
    assert response.status_code == 302, (response.status_code, response.text)
    return client


def open_ws(client: Http, proxy_url: str, **kw: Any) -> ClientConnection:
    """Open the proxy websocket of a job with ``client``'s session cookie."""
    headers = {"Origin": "127.0.0.1"}
    if client.session_id:
        headers["Cookie"] = f"JSESSIONID={client.session_id}"
    if client.bearer:
        headers["Authorization"] = f"Bearer {client.bearer}"
    ws = connect(
        proxy_url,
        additional_headers=headers,
        open_timeout=10,
        close_timeout=5,
        max_size=2**20,
        **kw,
    )
    return ws.__enter__()  # entered: usable directly or as a context manager


def recv_frame(ws: ClientConnection, timeout: float = 10.0) -> Any:
    data = ws.recv(timeout=timeout)
    assert isinstance(data, bytes)
    return decode_server_frame(data)


def ver_request(sequence: int, x: int = 0, y: int = 0) -> bytes:
    return scp_request(x, y, 0, SCPCommand.VER, sequence=sequence).to_bytes()


# ---- file descriptors ------------------------------------------------------------------
def _socket_inodes(pid: int | str) -> set[str]:
    out: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for entry in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _udp_inodes(pid: int | str) -> set[str]:
    inodes: set[str] = set()
    for table in ("udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9:
                inodes.add(fields[9])
    return inodes


def udp_socket_count(pid: int | str = "self") -> int:
    """How many UDP sockets process ``pid`` holds open (from /proc)."""
    return len(_socket_inodes(pid) & _udp_inodes(pid))


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
