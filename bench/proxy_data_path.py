"""Bulk SDRAM write+read through the proxy: ours vs spinnman 1!7.3.0, UDP and REST.

``python -m bench.proxy_data_path [--size-mb 8] [--latency-size-mb 1] [--rounds 3]``

A virtual spin24 (its own process, on a free 127.1.N.0 base) is powered and booted
per job by the service's BMP controller; the service (its own process) speaks HTTPS
with a throw-away CA, because spinnman forces https. Two one-board jobs: ours and
spinnman's. Contenders, interleaved round by round (median of the rounds reported):

a. our ``Transceiver`` over a proxied channel (``job.connect_to_board(0, 0)``);
b. spinnman 1!7.3.0 ``job.create_transceiver()`` (its own venv and process);
c. our ``Transceiver`` over plain UDP straight to the board (no proxy, no service);
d. our ``SpallocTransceiver`` (``job.create_transceiver()``): memory by the REST
   ``memory`` endpoint, the service talking UDP to the board.

Then the same with ``--latency-ms`` (20) of round-trip latency on both boards
(``VirtualBoard.set_fault``), smaller data (``--latency-size-mb``) to stay bounded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench._common import banner, load_average, median, ratio
from bench._rig import proxy_rig

ADDRESS = 0x60000000
NAMES = {
    "a": "ours, proxy (Transceiver over proxied channel)",
    "b": "spinnman 7.3.0, proxy",
    "c": "ours, plain UDP to board",
    "d": "ours, REST memory endpoint (SpallocTransceiver)",
}
TARGETS = {"a/b": 3.0, "a/c": 0.5, "d/a": 10.0}


def _time_ours(txrx: Any, size: int) -> tuple[float, float, bool]:
    data = os.urandom(size)
    start = time.perf_counter()
    txrx.write_memory(0, 0, ADDRESS, data)
    middle = time.perf_counter()
    back = txrx.read_memory(0, 0, ADDRESS, size)
    end = time.perf_counter()
    return middle - start, end - middle, bytes(back) == data


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; print the tables; return the figures (for tests)."""
    from pyspalloc.transceiver import Transceiver
    from pyspalloc.transceiver.connections import UDPConnection

    banner("proxy data path: SDRAM write+read at chip (0, 0)")
    results: dict[str, Any] = {}
    with proxy_rig(with_spinnman=not args.skip_spinnman) as rig:
        job, peer = rig.job, rig.peer
        contenders: dict[str, Callable[[int], tuple[float, float, bool]]] = {}
        tx_a = Transceiver([job.connect_to_board(0, 0)], window=args.window)
        contenders["a"] = lambda n: _time_ours(tx_a, n)
        if peer is not None:

            def spinnman_rw(n: int) -> tuple[float, float, bool]:
                assert peer is not None
                r = peer.ask({"op": "rw", "size": n}, timeout=600)
                return float(r["write_s"]), float(r["read_s"]), bool(r["ok"])

            contenders["b"] = spinnman_rw
        tx_c = Transceiver([UDPConnection(rig.ip, 17893)], window=args.window)
        contenders["c"] = lambda n: _time_ours(tx_c, n)
        tx_d = job.create_transceiver()
        contenders["d"] = lambda n: _time_ours(tx_d, n)
        for latency, size_mb in ((0.0, args.size_mb), (args.latency_ms, args.latency_size_mb)):
            if latency < 0:
                continue
            rig.set_latency(latency)
            size = int(size_mb * 1024 * 1024)
            rates: dict[str, list[float]] = {k: [] for k in contenders}
            writes: dict[str, list[float]] = {k: [] for k in contenders}
            reads: dict[str, list[float]] = {k: [] for k in contenders}
            keys = list(contenders)
            for round_no in range(args.rounds):
                order = keys[round_no % len(keys) :] + keys[: round_no % len(keys)]
                for name in order:
                    w, r, ok = contenders[name](size)
                    if not ok:
                        raise RuntimeError(f"contender {name}: data read back differs")
                    writes[name].append(size / w / 1e6)
                    reads[name].append(size / r / 1e6)
                    rates[name].append(2 * size / (w + r) / 1e6)
            mb = {k: median(v) for k, v in rates.items()}
            print(
                f"\n## {size_mb:g} MiB write then read, {latency:g} ms added RTT, "
                f"{args.rounds} interleaved rounds (median); load {load_average()}"
            )
            print("| contender | write MB/s | read MB/s | write+read MB/s |")
            print("|---|---|---|---|")
            for k in contenders:
                print(
                    f"| {k}: {NAMES[k]} | {median(writes[k]):.2f} | "
                    f"{median(reads[k]):.2f} | {mb[k]:.2f} |"
                )
            ratios = {
                "a/b": ratio(mb["a"], mb.get("b", float("nan"))),
                "a/c": ratio(mb["a"], mb["c"]),
                "d/a": ratio(mb["d"], mb["a"]),
            }
            print("| ratio | value | target |")
            print("|---|---|---|")
            for name, value in ratios.items():
                target = TARGETS[name]
                verdict = "met" if value >= target else "MISSED"
                print(f"| {name} | {value:.2f} | >= {target:g} ({verdict}) |")
            results[f"{latency:g}ms"] = {"mb_s": mb, "ratios": ratios}
        tx_a.close()
        tx_c.close()
        tx_d.close()
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.proxy_data_path", description=__doc__)
    p.add_argument("--size-mb", type=float, default=8.0, help="MiB per transfer, no latency")
    p.add_argument("--latency-size-mb", type=float, default=0.25, help="MiB with latency")
    p.add_argument("--latency-ms", type=float, default=20.0, help="added RTT; <0 skips")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--window", type=int, default=8, help="our engine's window (a, c)")
    p.add_argument("--skip-spinnman", action="store_true", help="no contender b")
    return p


def main(argv: list[str] | None = None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
