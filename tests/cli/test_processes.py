"""The commands as real processes: ``pyspalloc demo`` end to end, ``--keep``, and
``alloc`` held until Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.cli.conftest import Cli
from tests.conftest import USERS

PYSPALLOC = [sys.executable, "-c", "from pyspalloc.cli.main import main; main()"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPALLOC_")}
    env.update(COLUMNS="160", PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.mark.slow
def test_demo_end_to_end() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [*PYSPALLOC, "demo", "--megabytes", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    elapsed = time.monotonic() - started
    out = result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for state in ("QUEUED", "READY", "DESTROYED"):
        assert state in out
    assert re.search(r"Write 2\.0 MiB in [\d.]+ s: [\d.]+ MiB/s", out), out
    assert re.search(r"Read +2\.0 MiB in [\d.]+ s: [\d.]+ MiB/s", out), out
    assert "Read back all 2097152 bytes intact" in out
    # the three boards of the job: triads, cabinet/frame/board and IP addresses
    boards = re.findall(r"│ 0, 0, (\d)\s+│ 0 / 0 / (\d)\s+│ (127\.\d+\.0\.\d+)", out)
    assert sorted(b[0] for b in boards) == ["0", "1", "2"], out
    url = re.search(r"Web UI\s+(http://127\.0\.0\.1:\d+/spalloc/system/)", out)
    assert url is not None, out
    assert re.search(r"log in as admin / \S+", out)
    assert elapsed < 60


@pytest.mark.slow
def test_demo_keep_serves_until_interrupted() -> None:
    from pyspalloc import SpallocClient

    process = subprocess.Popen(
        [*PYSPALLOC, "demo", "--keep", "--megabytes", "0.25", "--boards", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "export SPALLOC_SERVER=" in line:
                break
        text = "".join(lines)
        found = re.search(r"SPALLOC_SERVER=(\S+) SPALLOC_USER=(\S+) SPALLOC_PASSWORD=(\S+)", text)
        assert found is not None, text
        url, user, password = found.groups()
        with SpallocClient(url, user, password) as client:
            assert "spin24" in client.list_machines()
        import requests

        page = requests.get(url + "system/", timeout=10, allow_redirects=False)
        assert page.status_code in (200, 302, 303, 401), page.status_code  # login needed
        login = requests.get(url + "system/login.html", timeout=10)
        assert login.status_code == 200 and "password" in login.text.lower()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_alloc_held_until_interrupted(service: Any, client_for: Any, signum: int) -> None:
    env = _env(SPALLOC_SERVER=service.url, SPALLOC_USER="alice", SPALLOC_PASSWORD=USERS["alice"][0])
    process = subprocess.Popen(
        [*PYSPALLOC, "alloc", "2", "1", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        text = ""
        while True:
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            text += line
            if line.startswith("}"):
                break
        job = json.loads(text)
        assert job["state"] == "READY" and job["num_boards"] == 6
        client = client_for("alice")
        assert client.get_job(job["id"]).get_state().name == "READY"
        time.sleep(0.5)
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
        state = client.get_job(job["id"]).get_state_json()
        assert (state["state"], state["reason"]) == ("DESTROYED", "cancelled")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_alloc_notices_the_job_dying(cli: Cli, service: Any, client_for: Any) -> None:
    env = _env(SPALLOC_SERVER=service.url, SPALLOC_USER="alice", SPALLOC_PASSWORD=USERS["alice"][0])
    process = subprocess.Popen(
        [*PYSPALLOC, "alloc", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        text = ""
        while not text.rstrip().endswith("}") or text.count("{") != text.count("}"):
            line = process.stdout.readline()
            assert line, process.stderr.read()
            text += line
        job = json.loads(text)
        destroyed = cli("job", str(job["id"]), "--destroy", "taken away", user="root")
        assert destroyed.exit_code == 0, destroyed.output
        assert process.wait(timeout=30) == 1
        assert "destroyed: taken away" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("command", [["jobs"], ["machines"], ["machines", "spin24"]])
def test_watch_until_interrupted(service: Any, client_for: Any, command: list[str]) -> None:
    job = client_for("alice").create_job(1)
    env = _env(SPALLOC_SERVER=service.url, SPALLOC_USER="alice", SPALLOC_PASSWORD=USERS["alice"][0])
    process = subprocess.Popen(
        [*PYSPALLOC, *command, "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        assert "press Ctrl-C to stop" in process.stderr.readline()  # logged in and drawn
        time.sleep(1)  # a few redraws
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert str(job.job_id) in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_demo_port_in_use() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*PYSPALLOC, "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(),
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot use port {port}: Address already in use"
    ]
