"""Keepalive soak: many jobs held by keepalives for minutes; none may expire, and the ones
whose keepalives stop must expire within one check period.

``python -m bench.keepalive_soak [--jobs 1000] [--minutes 10] [--interval 30]
[--expiry-period 5] [--stop 100]``

Starts the service in this process (built-in ``spinnaker1m``, 1,200 boards, instant
power, SQLite in a temporary directory, loopback only), creates ``--jobs`` one-board jobs
with ``keepalive-interval`` = ``--interval`` s, and PUTs each job's keepalive every half
interval from a few threads (several logged-in sessions). At a third of the run it stops
the keepalives of ``--stop`` jobs. At the end:

* every job still being kept alive must be READY (a DESTROYED one is a spurious expiry);
* every stopped job must be DESTROYED with reason ``keepalive expired``, and its
  ``finish-time`` must be no later than (its last keepalive's answer + interval +
  expiry-period + ``--slack`` s for the expiry pass itself), nor earlier than (that
  keepalive's sending + interval). Latency = finish - (last answer + interval).

Prints one JSON line. ``tests/reliability/test_keepalive.py`` runs :func:`soak` with
100 jobs for 40 s.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.http_client import Http


@dataclass
class SoakResult:
    """What a soak saw."""

    jobs: int
    seconds: float
    keepalives: int = 0
    keepalive_failures: list[str] = field(default_factory=list)
    spurious_expiries: list[str] = field(default_factory=list)
    stopped: int = 0
    expired_in_time: int = 0
    late_or_missing: list[str] = field(default_factory=list)
    expiry_latency_max: float = 0.0
    expiry_latency_mean: float = 0.0
    create_seconds: float = 0.0
    max_keepalive_gap: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("keepalive_failures", "spurious_expiries", "late_or_missing"):
            out[key + "_count"] = len(out[key])
            out[key] = out[key][:10]
        return out


def _iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _Keeper(threading.Thread):
    """PUTs the keepalives of its share of the jobs every half interval."""

    def __init__(
        self, client: Http, urls: list[str], interval: float, end: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.due = {url: time.monotonic() + random.uniform(0, interval / 2) for url in urls}
        self.interval = interval
        self.half = interval / 2  # as spinnman and our client do
        self.end = end
        self.stopped: set[str] = set()
        self.count = 0
        self.failures: list[str] = []
        #: url -> wall-clock (sent, answered) of the last successful keepalive
        self.last_ok: dict[str, tuple[float, float]] = {}
        #: longest time between two answered keepalives of one job (client-side lateness)
        self.max_gap = 0.0
        self.lock = threading.Lock()

    def add(self, url: str) -> None:
        """Keep a just-created job alive (creation counts as its first keepalive)."""
        with self.lock:
            self.due[url] = time.monotonic() + self.half

    def stop_some(self, urls: list[str]) -> None:
        with self.lock:
            self.stopped.update(urls)

    def run(self) -> None:
        for _ in range(100_000_000):
            now = time.monotonic()
            if self.end.is_set():
                return
            with self.lock:
                ready = [u for u, t in self.due.items() if t <= now and u not in self.stopped]
            for url in ready:
                try:
                    sent = time.time()
                    response = self.client.put(url + "/keepalive", data="alive")
                    if response.status_code != 200:
                        self.failures.append(f"{url}: {response.status_code}")
                    else:
                        previous = self.last_ok.get(url)
                        if previous is not None:
                            self.max_gap = max(self.max_gap, time.time() - previous[1])
                        self.last_ok[url] = (sent, time.time())
                except Exception as error:
                    self.failures.append(f"{url}: {error!r}")
                self.count += 1
                self.due[url] = time.monotonic() + self.half
            time.sleep(0.05)


def soak(
    url: str,
    users: list[tuple[str, str]],
    jobs: int,
    seconds: float,
    interval: float,
    expiry_period: float,
    stop: int,
    slack: float = 1.0,
    threads: int = 8,
    database: str | None = None,
) -> SoakResult:
    """Run the soak against a running service at ``url`` (``.../spalloc/``).

    With ``database`` (the service's SQLAlchemy URL) expiry latencies come from the
    stored times (REST shows whole seconds); without it, from the client's clock with a
    second of tolerance.
    """
    result = SoakResult(jobs=jobs, seconds=seconds)
    clients = []
    for n in range(threads):
        client = Http(url)
        name, password = users[n % len(users)]
        assert client.login(name, password).status_code == 302
        clients.append(client)
    started = time.monotonic()
    urls: list[str] = []
    body = {"num-boards": 1, "keepalive-interval": f"PT{interval:g}S", "tags": ["default"]}
    # each job is kept alive through the session that created it, from its creation on
    end = threading.Event()  # set after the final check: keepalives run until then
    keepers = [_Keeper(c, [], interval, end) for c in clients]
    for keeper in keepers:
        keeper.start()
    for n in range(jobs):
        created = clients[n % threads].post("jobs", json=body)
        assert created.status_code == 201, created.text
        urls.append(created.headers["location"])
        keepers[n % threads].add(urls[-1])
    result.create_seconds = time.monotonic() - started
    time.sleep(seconds / 3)
    stopped = random.Random(5).sample(range(jobs), stop)
    stopped_urls = {urls[i] for i in stopped}
    for n, keeper in enumerate(keepers):
        keeper.stop_some([u for u in urls[n::threads] if u in stopped_urls])
    result.stopped = len(stopped_urls)
    time.sleep(max(0.0, seconds - (time.monotonic() - started - result.create_seconds)))
    latencies = []
    last_ok = {u: t for k in keepers for u, t in k.last_ok.items()}
    try:
        states = [clients[n % threads].get(u).json() for n, u in enumerate(urls)]
    finally:
        end.set()
        for keeper in keepers:
            keeper.join(60)
    result.keepalives = sum(k.count for k in keepers)
    result.keepalive_failures = [f for k in keepers for f in k.failures]
    result.max_keepalive_gap = max(k.max_gap for k in keepers)
    for job_url, state in zip(urls, states, strict=True):
        if job_url not in stopped_urls:
            if state["state"] != "READY":
                result.spurious_expiries.append(
                    f"{job_url}: {state['state']} {state.get('reason')}"
                )
            continue
        if state["state"] != "DESTROYED" or state.get("reason") != "keepalive expired":
            result.late_or_missing.append(f"{job_url}: {state['state']} {state.get('reason')}")
            continue
        if database is not None:
            job = _stored_job(database, int(job_url.rstrip("/").rsplit("/", 1)[1]))
            latency = job.finish_time - (job.keepalive_time + job.keepalive_interval)
            early = latency < 0
        elif job_url in last_ok:
            sent, answered = last_ok[job_url]
            finish = _iso(state["finish-time"])  # whole seconds
            latency = finish - (answered + interval)
            early = finish + 1 < sent + interval
        else:
            result.late_or_missing.append(f"{job_url}: never kept alive")
            continue
        latencies.append(latency)
        if not early and latency <= expiry_period + slack + (0 if database else 1):
            result.expired_in_time += 1
        else:
            result.late_or_missing.append(f"{job_url}: expired {latency:+.2f} s after deadline")
    if latencies:
        result.expiry_latency_max = max(latencies)
        result.expiry_latency_mean = sum(latencies) / len(latencies)
    return result


def _stored_job(database: str, job_id: int) -> Any:
    from pyspalloc.server.store import Store

    store = Store(database)
    try:
        return store.get_job(job_id)
    finally:
        store.close()


def start_soak_service(
    work: Path, interval: float, expiry_period: float, users: list[tuple[str, str]]
) -> Any:
    """The service (spinnaker1m, instant power, SQLite under ``work``); a RunningService."""
    from pyspalloc.server.auth import hash_password
    from pyspalloc.server.config import ServiceConfig
    from pyspalloc.server.controller import InstantMachineController
    from pyspalloc.server.runner import start_service
    from pyspalloc.server.store import Store, TrustLevel

    database = f"sqlite:///{work / 'spalloc.sqlite3'}"
    store = Store(database)
    try:
        for name, password in users:
            store.create_user(name, hash_password(password), TrustLevel.USER)
    finally:
        store.close()
    config = ServiceConfig(
        host="127.0.0.1", port=0, data_dir=work, database=database,
        machines=["spinnaker1m"], controller="instant",
        create_admin=False, allocator_period=1.0, expiry_period=expiry_period,
        keepalive_min=min(30.0, interval), keepalive_max=max(300.0, interval),
    )  # fmt: skip
    return start_service(config, controller=InstantMachineController())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=30.0, help="keepalive interval (s)")
    parser.add_argument("--expiry-period", type=float, default=5.0, help="expiry check (s)")
    parser.add_argument("--stop", type=int, default=100, help="jobs whose keepalives stop")
    parser.add_argument("--slack", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    users = [("soak1", "soak-pw-1"), ("soak2", "soak-pw-2")]
    with tempfile.TemporaryDirectory(prefix="keepalive-soak-") as tmp:
        service = start_soak_service(Path(tmp), args.interval, args.expiry_period, users)
        try:
            result = soak(
                service.url, users, args.jobs, args.minutes * 60, args.interval,
                args.expiry_period, args.stop, args.slack, args.threads,
                service.config.database_url(),
            )  # fmt: skip
        finally:
            service.stop()
    out = result.as_dict()
    out.update(interval=args.interval, expiry_period=args.expiry_period, minutes=args.minutes)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
