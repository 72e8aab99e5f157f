"""Bulk SDRAM write+read through the proxy: ours vs spinnman 1!7.3.0, UDP and REST.

``python -m bench.proxy_data_path [--size-mb 8] [--latency-size-mb 0.5] [--rounds 3]``

A virtual spin24 (its own process, on a free 127.1.N.0 base) is powered and booted
per job by the service's BMP controller; the service (its own process) speaks HTTPS
with a throw-away CA, because spinnman forces https. Two one-board jobs: ours and
spinnman's. Contenders, interleaved round by round (median of the rounds reported):

a. our ``Transceiver`` over a proxied channel (``job.connect_to_board(0, 0)``);
b. spinnman 1!7.3.0 ``job.create_transceiver()`` (its own venv and process);
c. our ``Transceiver`` over plain UDP straight to the board (no proxy, no service);
d. our ``SpallocTransceiver`` (``job.create_transceiver()``): memory by the REST
   ``memory`` endpoint, the service talking UDP to the board.

Then, with smaller data (``--latency-size-mb``) to stay bounded, two ways of adding
``--latency-ms`` (20) of round trip:

* at the boards (``VirtualBoard.set_fault``): every path pays it, including the
  service's own UDP to the board behind the REST endpoint (d);
* for a remote user (a fresh rig): a TCP relay (``bench._relay``) between the clients
  and the service, the boards local to the service, as in a real installation; c, which
  has no service, gets the latency at the board while it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench._common import banner, load_average, median, ratio
from bench._rig import Rig, proxy_rig

Contender = Callable[[int], tuple[float, float, bool]]

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


def _contenders(
    rig: Rig, window: int | None, local_c: bool
) -> tuple[dict[str, Contender], list[Any]]:
    """The contenders on ``rig``; ``local_c`` False: c gets the board latency only.

    ``window`` None: a uses its default over a proxied channel, and c the same window
    (c is the limit of our engine on this machine, not a different setting).
    """
    from pyspalloc.transceiver import Transceiver
    from pyspalloc.transceiver.connections import UDPConnection
    from pyspalloc.wire.consts import SCP_PORT

    job, peer = rig.job, rig.peer
    contenders: dict[str, Contender] = {}
    tx_a = Transceiver([job.connect_to_board(0, 0)], window=window)
    print(f"# engine window for a and c: {tx_a.options.window}")
    contenders["a"] = lambda n: _time_ours(tx_a, n)
    if peer is not None:

        def spinnman_rw(n: int) -> tuple[float, float, bool]:
            assert peer is not None
            r = peer.ask({"op": "rw", "size": n}, timeout=600)
            return float(r["write_s"]), float(r["read_s"]), bool(r["ok"])

        contenders["b"] = spinnman_rw
    tx_c = Transceiver([UDPConnection(rig.ip, SCP_PORT)], options=tx_a.options)
    if local_c:
        contenders["c"] = lambda n: _time_ours(tx_c, n)
    else:

        def remote_c(n: int) -> tuple[float, float, bool]:
            rig.vm.ask({"op": "fault", "ip": rig.ip, "latency_ms": rig.remote_ms, "loss": 0})
            try:
                return _time_ours(tx_c, n)
            finally:
                rig.vm.ask({"op": "fault", "ip": rig.ip, "latency_ms": 0, "loss": 0})

        contenders["c"] = remote_c
    tx_d = job.create_transceiver()
    contenders["d"] = lambda n: _time_ours(tx_d, n)
    return contenders, [tx_a, tx_c, tx_d]


def _measure(
    title: str, contenders: dict[str, Contender], size_mb: float, rounds: int
) -> dict[str, Any]:
    size = int(size_mb * 1024 * 1024)
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    writes: dict[str, list[float]] = {k: [] for k in contenders}
    reads: dict[str, list[float]] = {k: [] for k in contenders}
    keys = list(contenders)
    for round_no in range(rounds):
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
        f"\n## {title}: {size_mb:g} MiB write then read, "
        f"{rounds} interleaved rounds (median); load {load_average()}"
    )
    print("| contender | write MB/s | read MB/s | write+read MB/s |")
    print("|---|---|---|---|")
    for k in contenders:
        print(
            f"| {k}: {NAMES[k]} | {median(writes[k]):.3f} | {median(reads[k]):.3f} | {mb[k]:.3f} |"
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
    return {"mb_s": mb, "ratios": ratios}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; print the tables; return the figures (for tests)."""
    banner("proxy data path: SDRAM write+read at chip (0, 0)")
    results: dict[str, Any] = {}
    with proxy_rig(with_spinnman=not args.skip_spinnman) as rig:
        contenders, transceivers = _contenders(rig, args.window, local_c=True)
        results["0ms"] = _measure("no added latency", contenders, args.size_mb, args.rounds)
        if args.latency_ms >= 0:
            rig.set_latency(args.latency_ms)
            results[f"{args.latency_ms:g}ms"] = _measure(
                f"{args.latency_ms:g} ms added RTT at the boards (set_fault): every path, "
                "the service's own UDP to the board too",
                contenders,
                args.latency_size_mb,
                args.rounds,
            )
        for txrx in transceivers:
            txrx.close()
    if args.latency_ms >= 0 and not args.no_remote:
        with proxy_rig(with_spinnman=not args.skip_spinnman, relay_rtt_ms=args.latency_ms) as rig:
            rig.remote_ms = args.latency_ms
            contenders, transceivers = _contenders(rig, args.window, local_c=False)
            results[f"remote {args.latency_ms:g}ms"] = _measure(
                f"remote user: {args.latency_ms:g} ms RTT between client and service (TCP "
                "relay), boards local; c (no service) gets it at the board instead",
                contenders,
                args.latency_size_mb,
                args.rounds,
            )
            for txrx in transceivers:
                txrx.close()
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.proxy_data_path", description=__doc__)
    p.add_argument("--size-mb", type=float, default=8.0, help="MiB per transfer, no latency")
    p.add_argument("--latency-size-mb", type=float, default=0.5, help="MiB with latency")
    p.add_argument("--latency-ms", type=float, default=20.0, help="added RTT; <0 skips")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--window", type=int, default=None, help="our engine's window for a and c (default: a's)"
    )
    p.add_argument("--skip-spinnman", action="store_true", help="no contender b")
    p.add_argument("--no-remote", action="store_true", help="skip the remote-user (relay) part")
    return p


def main(argv: list[str] | None = None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
