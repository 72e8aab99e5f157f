"""Allocation churn on a SpiNNaker1M-shaped machine: ours vs the old spalloc_server.

``python -m bench.allocation_churn [--jobs 1200] [--single-rounds 1] [--rounds 3]``

Both services manage a 20x20-triad (1,200-board) machine with instant power:

* ours (``python -m bench._serve``, its own process): built-in ``spinnaker1m`` with the
  ``InstantMachineController``, every change committed to a SQLite file before the
  request returns (and to PostgreSQL too, as a third contender, when
  ``PYSPALLOC_TEST_POSTGRES_URL`` is set). Driven by our client's REST ``Session``
  (``pyspalloc.client.session.Session``: one logged-in ``requests`` session with CSRF,
  raw job URLs) rather than ``SpallocClient``, which would start a keepalive thread
  per job.
* ours v1: the same service processes' v1 listener (JSON lines over TCP, the old
  clients' protocol), driven by the same ``ProtocolClient`` as the old server, with
  the same calls; every change is committed before the reply there too.
* old: ``spalloc-server 1!7.0.0`` (own venv, own process, BMP controller replaced by a
  no-I/O stub, ``seconds_before_free=0``, state kept in memory and pickled only at a
  clean shutdown), driven by ``spalloc 1!7.4.1``'s ``ProtocolClient`` (own venv).

Sequences, each run by both, interleaved round by round (median reported; the fill
takes ours about two minutes a round on the loaded 2-core box, hence one round by
default):

1. ``single``: create ``--jobs`` one-board jobs (fills the machine at 1,200), poll each
   job's state until all are READY, destroy them all;
2. ``mix``: 60 specific boards (the top triad row, by triad), then rectangles of
   2x2, 3x2 and 5x5 triads (10, 10 and 4 of them), all READY, all destroyed.

Figures: jobs/s over create+ready+destroy, and each phase's wall time. One client
connection, one request at a time, on both sides.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.addresses import free_port

from bench._common import (
    USERS,
    Worker,
    banner,
    cpu_seconds,
    load_average,
    median,
    peer_python,
    ratio,
    rss_mb,
    start_service,
)

OLD_SERVER = ("spalloc-server==1!7.0.0",)
OLD_CLIENT = ("spalloc==1!7.4.1",)
OLD_MACHINE = "SpiNNaker1M"
OUR_MACHINE = "spinnaker1m"
#: the account our v1 jobs belong to
V1_USER = "bench-v1"
POSTGRES_ENV = "PYSPALLOC_TEST_POSTGRES_URL"

#: the old server's configuration: a 20x20x3 machine, synthetic cabinet/frame/board slots
OLD_CONFIG = """
W, H = 20, 20
slots = {}
for n, (y, x, z) in enumerate((y, x, z) for y in range(H) for x in range(W) for z in range(3)):
    slots[(x, y, z)] = (n // 120, (n // 24) % 5, n % 24)
machine = Machine.with_standard_ips(
    "SpiNNaker1M", tags=set(["default"]), width=W, height=H,
    board_locations=slots, base_ip="127.1.0.0")
configuration = Configuration(machines=[machine], ip="127.0.0.1", seconds_before_free=0)
"""

# A job spec: (old-protocol positional args, our REST request body).
Spec = tuple[list[int], dict[str, Any]]


def single_jobs(n: int) -> list[Spec]:
    return [([1], {"num-boards": 1}) for _ in range(n)]


def mixed_jobs() -> list[Spec]:
    specs: list[Spec] = [
        ([x, 19, z], {"board": {"x": x, "y": 19, "z": z}}) for x in range(20) for z in range(3)
    ]
    for (w, h), count in (((2, 2), 10), ((3, 2), 10), ((5, 5), 4)):
        specs += [([w, h], {"dimensions": {"width": w, "height": h}})] * count
    return specs


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the old server exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the old server did not listen in time")


class Ours:
    """Our service driven through our client's REST session."""

    def __init__(self, url: str, pid: int, database: str, label: str) -> None:
        from pyspalloc.client.session import Session

        self.pid = pid
        self.database = database
        self.label = label
        self.session = Session(url, "bench", USERS["bench"])
        description = self.session.renew()
        self.jobs_url = str(description["jobs-ref"])
        self.created = 0

    def batch(self, specs: list[Spec], timeout: float) -> dict[str, float]:
        session = self.session
        t0 = time.perf_counter()
        urls = []
        for _, body in specs:
            request = {**body, "machine-name": OUR_MACHINE, "keepalive-interval": "PT300S"}
            urls.append(session.post(self.jobs_url, request).headers["Location"])
        t1 = time.perf_counter()
        waiting = urls
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            waiting = [u for u in waiting if session.get(u).json()["state"] != "READY"]
        t2 = time.perf_counter()
        for url in urls:
            session.delete(url, reason="bench")
        t3 = time.perf_counter()
        self.created += len(urls)
        return {
            "create_s": t1 - t0,
            "ready_s": t2 - t1,
            "destroy_s": t3 - t2,
            "not_ready": len(waiting),
        }

    def durable_destroyed(self) -> int:
        """Jobs the database holds as DESTROYED, read by a separate connection."""
        if self.database.startswith("sqlite:///"):
            path = self.database.removeprefix("sqlite:///")
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                row = conn.execute("SELECT count(*) FROM jobs WHERE state = 4").fetchone()
            return int(row[0])
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database)
        try:
            with engine.connect() as conn:
                value = conn.execute(text("SELECT count(*) FROM jobs WHERE state = 4")).scalar()
        finally:
            engine.dispose()
        return int(value or 0)


def _protocol_client(
    python: Path, port: int, machine: str, work: Path, name: str
) -> tuple[Worker, str]:
    """Start ``_old_client.py`` (spalloc 1!7.4.1's ``ProtocolClient``) on ``port``."""
    here = Path(__file__).parent
    client = Worker(
        [str(python), "-u", str(here / "_old_client.py"), "127.0.0.1", str(port), machine],
        stderr_path=work / f"{name}-client.log",
    )
    return client, str(client.read(60)["version"])


def _protocol_batch(
    client: Worker, timeout: float, on_created: Callable[[int], None] | None = None
) -> Callable[[list[Spec]], dict[str, float]]:
    def batch(specs: list[Spec]) -> dict[str, float]:
        jobs = [[spec[0], {}] for spec in specs]
        reply = client.ask({"jobs": jobs, "timeout": timeout}, timeout=600)
        if on_created is not None:
            on_created(int(reply["ids"]))
        return {k: float(v) for k, v in reply.items()}

    return batch


def run(args: argparse.Namespace) -> dict[str, Any]:
    banner("allocation churn on a SpiNNaker1M-shaped machine (instant power)")
    sequences: dict[str, list[Spec]] = {"single": single_jobs(args.jobs)}
    if not args.no_mix:
        sequences["mix"] = mixed_jobs()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-churn-") as tmp:
        work = Path(tmp)
        workers: list[Worker] = []
        old_server: subprocess.Popen[bytes] | None = None
        log = open(work / "old-server.log", "wb")  # noqa: SIM115 - closed below
        try:
            contenders: dict[str, Callable[[list[Spec]], dict[str, float]]] = {}
            pids: dict[str, int] = {}
            ours: list[Ours] = []
            databases = [("ours (SQLite)", f"sqlite:///{work / 'SQLite' / 'spalloc.sqlite3'}")]
            postgres = os.environ.get(POSTGRES_ENV)
            if postgres and not args.no_postgres:
                databases.append(("ours (PostgreSQL)", _fresh_postgres(postgres)))
            for label, database in databases:
                directory = work / label.split()[1].strip("()")
                directory.mkdir(exist_ok=True)
                service, info = start_service(
                    directory,
                    machines=[OUR_MACHINE],
                    address_base="127.1.0.0",
                    controller="instant",
                    database=database,
                    overrides={"allocator_period": 1.0, "keepalive_max": 300.0},
                    v1_user=None if args.skip_v1 else V1_USER,
                )
                workers.append(service)
                print(f"# {label}: {info['url']} (pid {info['pid']})")
                mine = Ours(info["url"], int(info["pid"]), database, label)
                ours.append(mine)
                contenders[label] = functools.partial(mine.batch, timeout=args.timeout)
                pids[label] = mine.pid
                if not args.skip_v1:
                    v1_label = label.replace("ours", "ours v1", 1)
                    v1_client, _ = _protocol_client(
                        peer_python(*OLD_CLIENT), int(info["v1_port"]), OUR_MACHINE, work,
                        v1_label.split()[-1].strip("()"),
                    )  # fmt: skip
                    workers.append(v1_client)
                    print(f"# {v1_label}: v1 listener on 127.0.0.1:{info['v1_port']}")

                    def count(n: int, mine: Ours = mine) -> None:
                        mine.created += n

                    contenders[v1_label] = _protocol_batch(v1_client, args.timeout, count)
                    pids[v1_label] = mine.pid
            if not args.skip_old:
                server_python = peer_python(*OLD_SERVER)
                client_python = peer_python(*OLD_CLIENT)
                config = work / "spin1m.py"
                config.write_text(OLD_CONFIG)
                port = free_port()
                here = Path(__file__).parent
                old_server = subprocess.Popen(
                    [str(server_python), str(here / "_old_server.py"), str(config), str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=work,
                )
                _wait_port(port, old_server)
                old_client, version = _protocol_client(
                    client_python, port, OLD_MACHINE, work, "old"
                )
                workers.append(old_client)
                print(f"# old spalloc_server {version} on 127.0.0.1:{port} (pid {old_server.pid})")
                contenders["old spalloc_server 1!7.0.0"] = _protocol_batch(old_client, args.timeout)
                pids["old spalloc_server 1!7.0.0"] = old_server.pid
            for name, specs in sequences.items():
                rounds = args.single_rounds if name == "single" else args.rounds
                results[name] = _compare(name, specs, contenders, pids, rounds)
            for mine in ours:
                durable = mine.durable_destroyed()
                print(
                    f"# {mine.label}: {durable} jobs DESTROYED in the database "
                    f"(read by a separate connection) of {mine.created} created"
                    + ("" if durable == mine.created else "  <-- NOT ALL DURABLE")
                )
                results[f"durable {mine.label}"] = (durable, mine.created)
        finally:
            for worker in reversed(workers):
                worker.stop()
            if old_server is not None and old_server.poll() is None:
                old_server.terminate()
                try:
                    old_server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    old_server.kill()
                    old_server.wait(timeout=5)
            log.close()
    return results


def _fresh_postgres(base_url: str) -> str:
    """A URL using a new schema of the PostgreSQL database at ``base_url``."""
    import uuid

    from sqlalchemy import create_engine, text

    schema = "bench_" + uuid.uuid4().hex[:10]
    engine = create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"


def _compare(
    name: str,
    specs: list[Spec],
    contenders: dict[str, Callable[[list[Spec]], dict[str, float]]],
    pids: dict[str, int],
    rounds: int,
) -> dict[str, Any]:
    phases: dict[str, dict[str, list[float]]] = {
        k: {"create_s": [], "ready_s": [], "destroy_s": [], "jobs_s": [], "cpu_s": []}
        for k in contenders
    }
    keys = list(contenders)
    for round_no in range(rounds):
        for key in keys[round_no % len(keys) :] + keys[: round_no % len(keys)]:
            cpu0 = cpu_seconds(pids[key])
            out = contenders[key](specs)
            cpu = cpu_seconds(pids[key]) - cpu0
            if out.get("not_ready"):
                raise RuntimeError(f"{key}: {out['not_ready']} jobs never became READY")
            total = out["create_s"] + out["ready_s"] + out["destroy_s"]
            for phase in ("create_s", "ready_s", "destroy_s"):
                phases[key][phase].append(out[phase])
            phases[key]["jobs_s"].append(len(specs) / total)
            phases[key]["cpu_s"].append(cpu)
    boards = sum(
        (b["dimensions"]["width"] * b["dimensions"]["height"] * 3 if "dimensions" in b else 1)
        if "num-boards" not in b
        else b["num-boards"]
        for _, b in specs
    )
    print(
        f"\n## {name}: {len(specs)} jobs, {boards} boards; {rounds} interleaved rounds "
        f"(median); load {load_average()}"
    )
    print("| service | create s | all READY s | destroy s | jobs/s | service CPU s | RSS MB |")
    print("|---|---|---|---|---|---|---|")
    rates = {}
    for key, p in phases.items():
        rates[key] = median(p["jobs_s"])
        print(
            f"| {key} | {median(p['create_s']):.2f} | {median(p['ready_s']):.2f} | "
            f"{median(p['destroy_s']):.2f} | {rates[key]:.0f} | {median(p['cpu_s']):.2f} | "
            f"{rss_mb(pids[key]):.0f} |"
        )
    old = rates.get("old spalloc_server 1!7.0.0")
    for key, rate in rates.items():
        if old and key.startswith("ours"):
            verdict = "met" if rate >= old else "MISSED"
            print(f"ratio {key} / old jobs/s: {ratio(rate, old):.2f} (target >= 1: {verdict})")
    return {"jobs_s": rates}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.allocation_churn", description=__doc__)
    p.add_argument("--jobs", type=int, default=1200, help="one-board jobs per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the mix per contender")
    p.add_argument(
        "--single-rounds", type=int, default=1, help="rounds of the one-board fill (ours ~2 min)"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="longest wait for READY (s)")
    p.add_argument("--no-mix", action="store_true", help="skip the rectangle/board mix")
    p.add_argument("--skip-old", action="store_true", help="no old spalloc_server")
    p.add_argument(
        "--skip-v1", action="store_true", help="no v1 contender (it needs spalloc 1!7.4.1)"
    )
    p.add_argument("--no-postgres", action="store_true", help=f"ignore ${POSTGRES_ENV}")
    return p


def main(argv: list[str] | None = None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
