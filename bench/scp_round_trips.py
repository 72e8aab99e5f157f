"""Single SCP round trips (CMD_VER to chip (0, 0)) through the proxy: ours vs spinnman.

``python -m bench.scp_round_trips [--calls 500] [--rounds 5] [--latency-ms 0]``

Same rig as ``bench.proxy_data_path`` (virtual spin24 and TLS service in their own
processes, one one-board job each). Contenders, interleaved in batches of ``--calls``
one-at-a-time calls, ``--rounds`` batches each:

a. our ``Transceiver.get_scamp_version(0, 0)`` over a proxied channel;
b. spinnman 1!7.3.0 ``_get_scamp_version(0, 0)`` over its proxied transceiver;
c. ours over plain UDP straight to the board (the floor: no proxy).

Printed: requests/s (calls / wall time of a batch, median over batches) and the median
and p99 latency over all calls, with the ratio a/b.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from bench._common import banner, load_average, median, percentile, ratio
from bench._rig import proxy_rig

NAMES = {
    "a": "ours, proxy",
    "b": "spinnman 7.3.0, proxy",
    "c": "ours, plain UDP (no proxy)",
}


def _ours(txrx: Any, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        txrx.get_scamp_version(0, 0)
        latencies.append(time.perf_counter() - start)
    return latencies


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark, print the table, return the figures."""
    from pyspalloc.transceiver import Transceiver
    from pyspalloc.transceiver.connections import UDPConnection
    from pyspalloc.wire.consts import SCP_PORT

    banner("SCP round trips: single CMD_VER calls to chip (0, 0)")
    with proxy_rig(with_spinnman=not args.skip_spinnman) as rig:
        rig.set_latency(args.latency_ms)
        tx_a = Transceiver([rig.job.connect_to_board(0, 0)])
        tx_c = Transceiver([UDPConnection(rig.ip, SCP_PORT)])
        contenders: dict[str, Callable[[int], list[float]]] = {
            "a": lambda n: _ours(tx_a, n),
        }
        if rig.peer is not None:
            peer = rig.peer
            contenders["b"] = lambda n: [
                float(x) for x in peer.ask({"op": "ver", "count": n}, timeout=600)["latencies"]
            ]
        contenders["c"] = lambda n: _ours(tx_c, n)
        for call in contenders.values():  # warm up (first-call costs, machine details)
            call(min(20, args.calls))
        latencies: dict[str, list[float]] = {k: [] for k in contenders}
        rates: dict[str, list[float]] = {k: [] for k in contenders}
        keys = list(contenders)
        for round_no in range(args.rounds):
            for name in keys[round_no % len(keys) :] + keys[: round_no % len(keys)]:
                batch = contenders[name](args.calls)
                latencies[name].extend(batch)
                rates[name].append(len(batch) / sum(batch))
        tx_a.close()
        tx_c.close()
    print(
        f"\n## {args.rounds} interleaved batches of {args.calls} calls each, "
        f"{args.latency_ms:g} ms added RTT; load {load_average()}"
    )
    print("| contender | requests/s (median batch) | median latency ms | p99 latency ms |")
    print("|---|---|---|---|")
    figures: dict[str, dict[str, float]] = {}
    for k in contenders:
        figures[k] = {
            "rps": median(rates[k]),
            "p50_ms": 1000 * median(latencies[k]),
            "p99_ms": 1000 * percentile(latencies[k], 0.99),
        }
        f = figures[k]
        print(f"| {k}: {NAMES[k]} | {f['rps']:.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} |")
    if "b" in figures:
        print(f"ratio a/b requests/s: {ratio(figures['a']['rps'], figures['b']['rps']):.2f}")
        print(f"ratio b/a p50 latency: {ratio(figures['b']['p50_ms'], figures['a']['p50_ms']):.2f}")
    print(f"ratio a/c requests/s: {ratio(figures['a']['rps'], figures['c']['rps']):.2f}")
    return figures


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.scp_round_trips", description=__doc__)
    p.add_argument("--calls", type=int, default=500, help="calls per batch")
    p.add_argument("--rounds", type=int, default=5, help="batches per contender")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added RTT on the boards")
    p.add_argument("--skip-spinnman", action="store_true", help="no contender b")
    return p


def main(argv: list[str] | None = None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
