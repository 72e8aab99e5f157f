"""The classic ``spalloc`` 1!7.4.1 client (its ``Job`` class and its five commands)
against our service's v1 listener.

The service runs in the test process (spin24, instant power, SQLite) with the v1
listener on a free loopback port; the old client runs in its own venv, configured by a
``.spalloc`` file in a temporary HOME (and, in one test, by command-line options).
``spalloc-where-is --board/--physical/--chip`` fail inside the old client itself, as
against the old server (spec §3.4): those tests check exactly that failure.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.server.store import JobState
from pyspalloc.server.v1 import V1Options
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

OLD_CLIENT = "spalloc==1!7.4.1"
OWNER = "tester@example.org"

JOB_SCRIPT = """
import json, sys, time
from spalloc_client import Job
host, port = sys.argv[1], int(sys.argv[2])
with Job(2, 1, hostname=host, port=port, owner="script@example.org", keepalive=2.0,
         machine="spin24") as job:
    job.wait_until_ready(timeout=60)
    out = {
        "id": job.id, "hostname": job.hostname, "width": job.width, "height": job.height,
        "connections": sorted([[x, y], h] for (x, y), h in job.connections.items()),
        "boards": job.boards, "machine": job.machine_name, "state": int(job.state),
        "power": job.power,
    }
    print(json.dumps({"ready": out["id"]}), flush=True)
    time.sleep(5.0)  # keepalive 2 s: only the Job's keepalive process keeps it alive
    out["state_after_wait"] = int(job.state)
    out["where"] = list(job.where_is_machine(13, 5))
print(json.dumps(out), flush=True)
"""


class OldTools:
    """Runs the old client's console scripts against one service."""

    def __init__(self, python: Path, home: Path, port: int) -> None:
        self.bin = python.parent
        self.python = python
        self.home = home
        self.port = port
        home.mkdir(parents=True, exist_ok=True)
        (home / ".spalloc").write_text(
            f"[spalloc]\nhostname = 127.0.0.1\nport = {port}\nowner = {OWNER}\n"
        )

    def run(self, command: str, *args: str, stdin: str = "", home: Path | None = None) -> Any:
        where = home or self.home
        return subprocess.run(
            [str(self.bin / command), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=where,
            env={"HOME": str(where), "PATH": "/usr/bin:/bin", "TERM": "dumb"},
            check=False,
        )

    def ok(self, command: str, *args: str, stdin: str = "") -> str:
        done = self.run(command, *args, stdin=stdin)
        assert done.returncode == 0, (command, args, done.stdout, done.stderr)
        return str(done.stdout)


@pytest.fixture
def v1_service(make_service: Callable[..., Any]) -> Any:
    return make_service(v1=V1Options(port=0, user="oldtools"), keepalive_min=1.0, expiry_period=0.5)


@pytest.fixture
def tools(interop_python: Callable[..., Path], v1_service: Any, tmp_path: Path) -> OldTools:
    return OldTools(interop_python(OLD_CLIENT), tmp_path / "home", v1_service.app.state.v1.port)


def _job(service: Any, job_id: int) -> Any:
    return service.app.state.ctx.store.get_job(job_id)


def _live_ids(service: Any) -> list[int]:
    store = service.app.state.ctx.store
    return [j.id for j in store.jobs_in_states(JobState.QUEUED, JobState.POWER, JobState.READY)]


def test_job_class_allocates_waits_reads_keeps_alive_destroys(
    tools: OldTools, v1_service: Any, run_interop_script: Callable[..., Any]
) -> None:
    process = run_interop_script(tools.python, JOB_SCRIPT, "127.0.0.1", str(tools.port))
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    result = lines[-1]
    assert result["state"] == result["state_after_wait"] == 3  # READY, kept alive
    assert result["power"] is True and result["machine"] == "spin24"
    assert (result["width"], result["height"]) == (28, 16)
    assert len(result["boards"]) == 6 and len(result["connections"]) == 6
    assert [[0, 0], result["hostname"]] in result["connections"]
    assert result["hostname"].startswith("127.1.")
    assert len(result["where"]) == 3  # (cabinet, frame, board) of job chip (13, 5)
    job = _job(v1_service, result["id"])
    assert job.state == JobState.DESTROYED and job.owner == "oldtools"
    assert json.loads(job.original_request)["v1"]["owner"] == "script@example.org"


def test_spalloc_runs_a_command_on_its_job(tools: OldTools, v1_service: Any) -> None:
    out = tools.ok(
        "spalloc", "2", "1", "--command", "echo", "HOST={hostname}", "W={w}", "H={h}", "ID={id}"
    )
    fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
    assert fields["HOST"].startswith("127.1.") and (fields["W"], fields["H"]) == ("28", "16")
    assert _job(v1_service, int(fields["ID"])).state == JobState.DESTROYED
    assert _live_ids(v1_service) == []


def test_spalloc_prints_the_job_then_destroys_it(tools: OldTools, v1_service: Any) -> None:
    out = tools.ok("spalloc", "--machine", "spin24", stdin="\n")
    assert "Hostname: 127.1." in out and "Running on: spin24" in out
    assert "Width: 8" in out and "Height: 8" in out
    assert _live_ids(v1_service) == []


def test_command_line_options_instead_of_a_config_file(tools: OldTools, tmp_path: Path) -> None:
    empty = tmp_path / "empty-home"
    empty.mkdir()
    args = ("--hostname", "127.0.0.1", "--port", str(tools.port))
    done = tools.run(
        "spalloc", *args, "--owner", "cli@example.org", "--no-destroy", stdin="\n", home=empty
    )
    assert done.returncode == 0, done.stderr
    done = tools.run("spalloc-ps", *args, home=empty)
    assert done.returncode == 0 and "cli@example.org" in done.stdout


def test_spalloc_ps_and_spalloc_job(tools: OldTools, v1_service: Any) -> None:
    tools.ok("spalloc", "2", "1", "--no-destroy", "--keepalive", "60", stdin="\n")
    (job_id,) = _live_ids(v1_service)
    ps = tools.ok("spalloc-ps")
    row = next(line for line in ps.splitlines() if line.split()[:1] == [str(job_id)])
    assert "ready" in row and "spin24" in row and OWNER in row and "127.0.0.1" in row
    info = tools.ok("spalloc-job", str(job_id), "--info")
    assert f"Job ID: {job_id}" in info and f"Owner: {OWNER}" in info
    assert "State: ready" in info and "Num boards: 6" in info and "Board power: on" in info
    assert "Width: 28" in info and "Height: 16" in info
    tools.ok("spalloc-job", str(job_id), "--power-off")
    assert _job(v1_service, job_id).power_target is False
    tools.ok("spalloc-job", str(job_id), "--power-on")
    job = _job(v1_service, job_id)
    assert job.power_target is True and job.state in (JobState.POWER, JobState.READY)
    ips = tools.ok("spalloc-job", str(job_id), "--ethernet-ips")
    assert ips.count("127.1.") == 6
    tools.ok("spalloc-job", str(job_id), "--destroy", "done with it")
    job = _job(v1_service, job_id)
    assert job.state == JobState.DESTROYED and job.reason == "done with it"


def test_spalloc_machine_list_and_map(tools: OldTools, v1_service: Any) -> None:
    listing = tools.ok("spalloc-machine")
    assert "spin24" in listing and "24" in listing and "default" in listing
    tools.ok("spalloc", "2", "1", "--no-destroy", stdin="\n")
    (job_id,) = _live_ids(v1_service)
    detail = tools.ok("spalloc-machine", "spin24", "--detailed")
    assert "In-use: 6 of 24" in detail and "Jobs: 1" in detail
    assert detail.count(" A ") >= 6  # six boards of job A on the hexagon map
    assert f"A         {job_id}           6  {OWNER}" in detail


def test_spalloc_where_is_job_chip(tools: OldTools, v1_service: Any) -> None:
    tools.ok("spalloc", "2", "1", "--no-destroy", stdin="\n")
    (job_id,) = _live_ids(v1_service)
    out = tools.ok("spalloc-where-is", "--job-chip", str(job_id), "13", "5")
    assert "Machine: spin24" in out and "Coordinates within board: (5, 1)" in out
    assert f"Job using board: {job_id}" in out and "Coordinates within job: (13, 5)" in out


@pytest.mark.parametrize(
    "query",
    [
        ("--board", "spin24", "1", "0", "1"),
        ("--physical", "spin24", "0", "0", "4"),
        ("--chip", "spin24", "13", "5"),
    ],
)
def test_spalloc_where_is_machine_forms_break_in_the_old_client(
    tools: OldTools, query: tuple[str, ...]
) -> None:
    """The 7.4.1 client's ``where_is`` only takes a job id: it fails before sending,
    against the old server too (spec §3.4); the service answers these forms itself."""
    done = tools.run("spalloc-where-is", *query)
    assert done.returncode != 0
    assert "unexpected keyword argument 'machine'" in done.stderr


def test_spalloc_ps_watch_redraws_on_notifications(tools: OldTools, v1_service: Any) -> None:
    """``spalloc-ps --watch`` subscribes with ``notify_job`` and redraws on each
    ``jobs_changed`` line: the job appears when created and goes when destroyed."""
    watch = subprocess.Popen(
        [str(tools.bin / "spalloc-ps"), "--watch"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tools.home,
        env={"HOME": str(tools.home), "PATH": "/usr/bin:/bin", "TERM": "dumb",
             "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    seen: list[str] = []

    def read() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            seen.append(line)

    threading.Thread(target=read, daemon=True).start()

    def shown(check: Callable[[str], bool], start: int) -> int:
        """Wait until a line after ``start`` passes ``check``; return the count seen."""
        wait_for(lambda: any(check(line) for line in seen[start:]), 30)
        return len(seen)

    try:
        done = shown(lambda line: line.startswith("ID"), 0)  # the first (empty) table
        tools.ok("spalloc", "--no-destroy", stdin="\n")
        (job_id,) = _live_ids(v1_service)
        done = shown(lambda line: line.split()[:2] == [str(job_id), "ready"], done)
        tools.ok("spalloc-job", str(job_id), "--destroy")
        shown(lambda line: line.startswith("ID") and "Created at  Keepalive" in line, done)
    finally:
        watch.kill()
        watch.wait(10)
