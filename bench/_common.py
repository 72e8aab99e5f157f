"""Shared pieces of the benchmarks: processes, addresses, a test CA, statistics.

Every contender runs in its own process so that no two share a GIL:

* the service (``python -m bench._serve``), with its database and power controller;
* the virtual machine (``python -m bench._vm``), controllable over its stdin;
* each client (ours in the benchmark process, the peers in their own venvs).
"""

from __future__ import annotations

import datetime
import json
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

#: users every benchmark service has (name -> password)
USERS = {"bench": "bench-pw-1", "peer": "peer-pw-2"}


def load_average() -> str:
    """The 1/5/15-minute load averages as a string."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def banner(title: str) -> None:
    """Print the title, date, CPU count and load average."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {title}")
    print(f"# {now}; {os.cpu_count()} cores; load average {load_average()}")
    print(f"# python {sys.version.split()[0]}; command: {' '.join(sys.argv)}")


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0..1) percentile by nearest rank, or NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN if ``b`` is zero or not a number."""
    return a / b if b and b == b else float("nan")


def tls_env(ca: Path) -> dict[str, str]:
    """Environment for a client process that must trust ``ca``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPALLOC_")}
    env["REQUESTS_CA_BUNDLE"] = str(ca)
    env["WEBSOCKET_CLIENT_CA_BUNDLE"] = str(ca)
    env.pop("SSL_CERT_FILE", None)
    return env


def peer_python(*requirements: str) -> Path:
    """Interpreter of a cached venv holding ``requirements`` (made on first use)."""
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.interop.venvs import ensure_venv
    finally:
        sys.path.pop(0)
    return ensure_venv(*requirements)


class Worker:
    """A child process spoken to by lines: commands on stdin, JSON lines on stdout."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stderr_path: Path | None = None,
    ) -> None:
        self._stderr = open(stderr_path or os.devnull, "w")  # noqa: SIM115 - closed in stop
        self.process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.stderr_path = stderr_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def read(self, timeout: float = 120.0) -> Any:
        """The next JSON line the child prints (other lines are skipped)."""
        out = self.process.stdout
        assert out is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([out], [], [], 0.5)
            if not ready:
                if self.process.poll() is not None:
                    break
                continue
            line = out.readline()
            if not line:
                break
            if line.startswith(("{", "[")):
                return json.loads(line)
        tail = ""
        if self.stderr_path is not None and self.stderr_path.exists():
            tail = self.stderr_path.read_text()[-4000:]
        raise RuntimeError(f"{self.process.args!r} gave no answer in time; stderr:\n{tail}")

    def ask(self, command: Any, timeout: float = 120.0) -> Any:
        """Send one JSON command line and return the JSON answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        """Close stdin (the child's signal to finish), then terminate it if it lingers."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
        self._stderr.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_service(
    workdir: Path,
    *,
    machines: list[str],
    address_base: str,
    controller: str = "instant",
    database: str | None = None,
    tls: tuple[Path, Path] | None = None,
    overrides: dict[str, Any] | None = None,
    v1_user: str | None = None,
) -> tuple[Worker, dict[str, Any]]:
    """Start ``python -m bench._serve`` and return it with its ``{"url", "pid"}``
    (and ``"v1_port"``: the v1 listener for ``v1_user``, if given)."""
    settings = {
        "data_dir": str(workdir / "service"),
        "database": database,
        "machines": machines,
        "virtual_address_base": address_base,
        "controller": controller,
        "tls": [str(p) for p in tls] if tls else None,
        "overrides": overrides or {},
        "v1_user": v1_user,
    }
    worker = Worker(
        [sys.executable, "-m", "bench._serve", json.dumps(settings)],
        cwd=REPO_ROOT,
        stderr_path=workdir / "service.log",
    )
    info = worker.read(120)
    return worker, info


def start_vm(
    workdir: Path, name: str, address_base: str, *, booted: bool = False
) -> tuple[Worker, dict[str, Any]]:
    """Start ``python -m bench._vm`` and return it with its board list."""
    argv = [sys.executable, "-m", "bench._vm", name, address_base]
    if booted:
        argv.append("--booted")
    worker = Worker(argv, cwd=REPO_ROOT, stderr_path=workdir / f"vm-{name}.log")
    info = worker.read(120)
    return worker, info


def cpu_seconds(pid: int, stat: str | None = None) -> float:
    """utime + stime of process ``pid`` in seconds (from /proc).

    ``stat`` names another ``stat`` file of the same format, e.g. one thread's
    ``/proc/PID/task/TID/stat``.
    """
    with open(stat or f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
