"""Load generators of ``bench.service_load``, each in its own process.

``python -m bench._load SETTINGS_JSON`` with ``settings["mode"]``:

* ``keepalive``: ``threads`` threads share ``jobs`` (job URLs); each PUTs ``alive`` to
  every job of its share once per ``period`` seconds, for ``duration`` seconds;
* ``proxy``: ``websockets`` proxy websockets spread over ``jobs`` (one-board jobs), one
  thread each, each doing back-to-back CMD_VER calls to chip (0, 0) through a channel,
  for ``duration`` seconds.

Prints ``{"ops": N, "errors": N, "latencies_ms": [...sample...]}`` at the end.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from typing import Any


def _keepalive(settings: dict[str, Any], stop: float, out: dict[str, Any]) -> None:
    from pyspalloc.client.session import Session
    from pyspalloc.client.utils import join_url

    session = Session(settings["url"], settings["user"], settings["password"])
    session.renew()
    urls = [join_url(u, "keepalive") for u in settings["jobs"]]
    lock = threading.Lock()
    period = float(settings["period"])

    def worker(share: list[str]) -> None:
        ops = errors = 0
        latencies: list[float] = []
        while time.monotonic() < stop:
            start_round = time.monotonic()
            for url in share:
                if time.monotonic() >= stop:
                    break
                t0 = time.perf_counter()
                try:
                    session.put(url, "alive")
                    ops += 1
                    latencies.append(time.perf_counter() - t0)
                except Exception:
                    errors += 1
            rest = period - (time.monotonic() - start_round)
            if rest > 0:
                time.sleep(min(rest, max(0.0, stop - time.monotonic())))
        with lock:
            out["ops"] += ops
            out["errors"] += errors
            out["latencies"].extend(latencies)

    n = int(settings["threads"])
    shares = [urls[i::n] for i in range(n)]
    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, stop - time.monotonic() + 30))


def _proxy(settings: dict[str, Any], stop: float, out: dict[str, Any]) -> None:
    from pyspalloc.client.proxy.connection import ProxyConnection
    from pyspalloc.client.proxy.connections import SpallocSCPConnection
    from pyspalloc.client.session import Session
    from pyspalloc.transceiver import Transceiver
    from pyspalloc.wire.consts import SCP_PORT

    session = Session(settings["url"], settings["user"], settings["password"])
    session.renew()
    proxy_urls = [str(session.get(u).json()["proxy-ref"]) for u in settings["jobs"]]
    lock = threading.Lock()
    ready = threading.Barrier(int(settings["websockets"]) + 1)

    def worker(index: int) -> None:
        ops = errors = 0
        latencies: list[float] = []
        proxy = None
        txrx = None
        try:
            proxy = ProxyConnection(proxy_urls[index % len(proxy_urls)], session=session)
            txrx = Transceiver([SpallocSCPConnection(proxy.open_channel(0, 0, SCP_PORT), None)])
        except Exception as error:
            print(f"websocket {index}: {error!r}", file=sys.stderr, flush=True)
            errors += 1
        try:
            ready.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass
        while txrx is not None and time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                txrx.get_scamp_version(0, 0)
                ops += 1
                latencies.append(time.perf_counter() - t0)
            except Exception as error:
                if not errors:
                    print(f"websocket {index}: {error!r}", file=sys.stderr, flush=True)
                errors += 1
        if txrx is not None:
            txrx.close()
        if proxy is not None:
            proxy.close()
        with lock:
            out["ops"] += ops
            out["errors"] += errors
            out["latencies"].extend(latencies)

    threads = [
        threading.Thread(target=worker, args=(i,), daemon=True)
        for i in range(int(settings["websockets"]))
    ]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join(timeout=max(1.0, stop - time.monotonic() + 30))


def main(argv: list[str]) -> None:
    settings: dict[str, Any] = json.loads(argv[0])
    out: dict[str, Any] = {"ops": 0, "errors": 0, "latencies": []}
    # the duration starts when the parent says go (a line on stdin)
    print(json.dumps({"loaded": True}), flush=True)
    sys.stdin.readline()
    stop = time.monotonic() + float(settings["duration"])
    if settings["mode"] == "keepalive":
        _keepalive(settings, stop, out)
    else:
        _proxy(settings, stop, out)
    latencies = out.pop("latencies")
    sample = random.sample(latencies, min(len(latencies), 20000))
    out["latencies_ms"] = [round(1000 * x, 3) for x in sample]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
