"""The ``user`` commands on a real SQLite file, and ``serve`` as a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner

from pyspalloc.cli.user import user
from tests.server.service_support import SERVICE_TIMEOUT
from tests.support.http_client import Http


def test_user_add_token_list_disable(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(user, ["add", "dora", "--admin", "--password-stdin", *data], input="pw\n")
    assert added.exit_code == 0, added.output
    assert "created admin dora" in added.output
    again = runner.invoke(user, ["add", "dora", "--password-stdin", *data], input="pw\n")
    assert again.exit_code != 0 and "already exists" in again.output
    token = runner.invoke(user, ["token", "dora", *data])
    assert token.exit_code == 0
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}\n", token.output)
    listed = runner.invoke(user, ["list", *data])
    assert "dora" in listed.output and "admin" in listed.output
    assert runner.invoke(user, ["disable", "dora", *data]).exit_code == 0
    assert runner.invoke(user, ["disable", "nobody", *data]).exit_code != 0
    from pyspalloc.server.store import Store

    store = Store(f"sqlite:///{tmp_path / 'spalloc.sqlite3'}")
    try:
        dora = store.get_user("dora")
        assert dora is not None and dora.disabled and dora.password_hash != "pw"
    finally:
        store.close()


def test_serve_subprocess_with_self_signed_tls(tmp_path: Path, port: int) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable, "-c", "from pyspalloc.cli.main import main; main()",
        "serve", "--port", str(port),
        "--data-dir", str(tmp_path), "--machine", "spin24", "--controller", "instant",
        "--self-signed",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        password = None
        assert process.stdout is not None
        while time.monotonic() < deadline and password is None:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"admin with password (\S+)", line)
            if found:
                password = found.group(1)
        assert password, "".join(lines)
        cert = tmp_path / "tls" / "cert.pem"
        assert cert.is_file()
        client = Http(
            f"https://127.0.0.1:{port}/spalloc/", verify=str(cert), timeout=SERVICE_TIMEOUT
        )
        logged_in = client.login("admin", password)
        assert logged_in.status_code == 302
        assert "Secure" in logged_in.headers["set-cookie"]
        url = client.create().headers["location"]
        assert url.startswith("https://")
        state = client.get(url).json()
        deadline = time.monotonic() + 10
        while state["state"] != "READY" and time.monotonic() < deadline:
            time.sleep(0.1)
            state = client.get(url).json()
        assert state["proxy-ref"].startswith("wss://")
        assert requests.get(client.srv, verify=str(cert), timeout=10).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert process.returncode == 0
