"""The service under load: 1,000 jobs sending keepalives plus 50 proxy websockets.

``python -m bench.service_load [--jobs 1000] [--websockets 50] [--duration 60]``

Processes (all on this machine, loopback only):

* the service (``python -m bench._serve``, instant power controller, SQLite file) with
  two machines: the built-in ``spinnaker1m`` (the keepalive jobs; nothing listens at its
  board addresses) and a ``spin24`` defined by file whose boards are served, already
  booted, by a virtual machine process (``python -m bench._vm --booted``);
* a keepalive process: ``--jobs`` one-board spinnaker1m jobs (keepalive interval 300 s,
  so none expires during set-up), each PUT ``alive`` once per ``--keepalive-period``
  (5 s: 200 PUTs/s for 1,000 jobs, ten times what clients at the default 120 s would send
  at the 30 s minimum they are allowed);
* a proxy process: ``--websockets`` proxy websockets spread over ``--proxy-jobs``
  one-board spin24 jobs, each doing back-to-back CMD_VER to chip (0, 0);
* this process: job-state GETs (``--state-rate`` per second, random keepalive job), and
  the service's CPU and memory sampled from ``/proc/PID`` every second.

Job-state latency is measured first with the service idle (only the proxy jobs exist,
no traffic), then under load, in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.addresses import free_virtual_base

from bench._common import (
    USERS,
    Worker,
    banner,
    cpu_seconds,
    load_average,
    median,
    percentile,
    rss_mb,
    start_service,
    start_vm,
)


def _create_jobs(session: Any, jobs_url: str, machine: str, n: int, interval: float) -> list[str]:
    urls: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(count: int) -> None:
        try:
            for _ in range(count):
                body = {
                    "num-boards": 1,
                    "machine-name": machine,
                    "keepalive-interval": f"PT{interval:g}S",
                }
                url = str(session.post(jobs_url, body).headers["Location"])
                with lock:
                    urls.append(url)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n // 4 + (i < n % 4),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return urls


def _wait_ready(session: Any, urls: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(urls)
    while waiting and time.monotonic() < deadline:
        waiting = [u for u in waiting if session.get(u).json()["state"] != "READY"]
        if waiting:
            time.sleep(0.2)
    if waiting:
        raise RuntimeError(f"{len(waiting)} jobs never became READY")


def _state_latencies(session: Any, urls: list[str], rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    gap = 1.0 / rate
    stop = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < stop:
        url = random.choice(urls)
        t0 = time.perf_counter()
        session.get(url)
        latencies.append(time.perf_counter() - t0)
        next_at += gap
        time.sleep(max(0.0, next_at - time.monotonic()))
    return latencies


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pyspalloc.client.session import Session
    from pyspalloc.geometry import builtin_machine
    from pyspalloc.geometry.json_format import dump_machine_definitions

    banner("service load: keepalive jobs + proxy websockets doing SCP")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        base = free_virtual_base(120)
        spin24 = work / "spin24.json"
        spin24.write_text(json.dumps(dump_machine_definitions([builtin_machine("spin24", base)])))
        vm, _ = start_vm(work, "spin24", base, booted=True)
        workers: list[Worker] = [vm]
        try:
            service, info = start_service(
                work,
                machines=["spinnaker1m", str(spin24)],
                address_base="127.3.0.0",
                controller="instant",
                overrides={"expiry_period": 5.0, "allocator_period": 1.0},
            )
            workers.append(service)
            pid = int(info["pid"])
            url = str(info["url"])
            print(f"# service {url} (pid {pid}); virtual spin24 (booted) at {base}")
            session = Session(url, "bench", USERS["bench"])
            jobs_url = str(session.renew()["jobs-ref"])
            proxied = _create_jobs(session, jobs_url, "spin24", args.proxy_jobs, 300)
            _wait_ready(session, proxied, 300)
            idle = _state_latencies(session, proxied, args.state_rate, min(10.0, args.duration / 3))
            t0 = time.perf_counter()
            keep = _create_jobs(session, jobs_url, "spinnaker1m", args.jobs, 300)
            _wait_ready(session, keep, 300)
            print(f"# {len(keep)} keepalive jobs READY in {time.perf_counter() - t0:.1f} s")
            settings = {"url": url, "user": "bench", "password": USERS["bench"]}
            loads = {
                "keepalive": Worker(
                    [
                        sys.executable,
                        "-m",
                        "bench._load",
                        json.dumps(
                            {
                                **settings,
                                "mode": "keepalive",
                                "jobs": keep,
                                "threads": args.keepalive_threads,
                                "period": args.keepalive_period,
                                "duration": args.duration,
                            }
                        ),
                    ],
                    stderr_path=work / "load-keepalive.log",
                ),
                "proxy": Worker(
                    [
                        sys.executable,
                        "-m",
                        "bench._load",
                        json.dumps(
                            {
                                **settings,
                                "mode": "proxy",
                                "jobs": proxied,
                                "websockets": args.websockets,
                                "duration": args.duration,
                            }
                        ),
                    ],
                    stderr_path=work / "load-proxy.log",
                ),
            }
            workers.extend(loads.values())
            for worker in loads.values():
                worker.read(60)
            rss0 = rss_mb(pid)
            cpu0, wall0 = cpu_seconds(pid), time.monotonic()
            for worker in loads.values():
                assert worker.process.stdin is not None
                worker.process.stdin.write("go\n")
                worker.process.stdin.flush()
            samples: list[tuple[float, float]] = []
            stop_sampling = threading.Event()

            def sample() -> None:
                last_cpu, last_t = cpu0, wall0
                while not stop_sampling.wait(1.0):
                    cpu, now = cpu_seconds(pid), time.monotonic()
                    samples.append((100 * (cpu - last_cpu) / (now - last_t), rss_mb(pid)))
                    last_cpu, last_t = cpu, now

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            loaded = _state_latencies(session, keep, args.state_rate, args.duration)
            outcome = {name: w.read(args.duration + 120) for name, w in loads.items()}
            stop_sampling.set()
            sampler.join()
            cpu_total = cpu_seconds(pid) - cpu0
            wall = time.monotonic() - wall0
            db = work / "service" / "spalloc.sqlite3"
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                alive = conn.execute("SELECT count(*) FROM jobs WHERE state = 3").fetchone()[0]
        finally:
            for worker in reversed(workers):
                worker.stop()
    ka, px = outcome["keepalive"], outcome["proxy"]
    ka_lat, px_lat = ka["latencies_ms"], px["latencies_ms"]
    print(
        f"\n## {args.jobs} keepalive jobs (PUT every {args.keepalive_period:g} s) + "
        f"{args.websockets} proxy websockets over {args.proxy_jobs} boards, "
        f"{args.duration:g} s; load {load_average()}"
    )
    print("| measure | value |")
    print("|---|---|")
    rows = [
        (
            "job-state GET p50 / p99 ms, idle service",
            f"{1000 * median(idle):.1f} / "
            f"{1000 * percentile(idle, 0.99):.1f} ({len(idle)} requests)",
        ),
        (
            "job-state GET p50 / p99 ms, under load",
            f"{1000 * median(loaded):.1f} / "
            f"{1000 * percentile(loaded, 0.99):.1f} ({len(loaded)} requests)",
        ),
        ("keepalive PUTs/s (errors)", f"{ka['ops'] / args.duration:.0f} ({ka['errors']})"),
        ("keepalive PUT p50 / p99 ms", f"{median(ka_lat):.1f} / {percentile(ka_lat, 0.99):.1f}"),
        (
            "proxied CMD_VER/s over all websockets (errors)",
            f"{px['ops'] / args.duration:.0f} ({px['errors']})",
        ),
        ("proxied CMD_VER p50 / p99 ms", f"{median(px_lat):.1f} / {percentile(px_lat, 0.99):.1f}"),
        ("service CPU, mean % of one core (whole run)", f"{100 * cpu_total / wall:.0f}"),
        ("service CPU, max 1-s sample %", f"{max((s[0] for s in samples), default=0):.0f}"),
        (
            "service RSS MB at start / max",
            f"{rss0:.0f} / {max((s[1] for s in samples), default=0):.0f}",
        ),
        ("keepalive jobs still READY at the end", f"{alive - args.proxy_jobs} of {args.jobs}"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    results.update(
        {
            "idle_p50_ms": 1000 * median(idle),
            "loaded_p50_ms": 1000 * median(loaded),
            "loaded_p99_ms": 1000 * percentile(loaded, 0.99),
            "keepalive_ops": ka["ops"],
            "proxy_ops": px["ops"],
            "cpu_percent": 100 * cpu_total / wall,
            "alive": alive,
        }
    )
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.service_load", description=__doc__)
    p.add_argument("--jobs", type=int, default=1000, help="keepalive jobs (spinnaker1m)")
    p.add_argument(
        "--keepalive-period", type=float, default=5.0, help="seconds between PUTs of a job"
    )
    p.add_argument("--keepalive-threads", type=int, default=8)
    p.add_argument("--websockets", type=int, default=50)
    p.add_argument("--proxy-jobs", type=int, default=10, help="spin24 boards (<= 24)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds under load")
    p.add_argument("--state-rate", type=float, default=20.0, help="job-state GETs per second")
    return p


def main(argv: list[str] | None = None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
