"""CPU per SCP packet of each process on the proxy data path (where the time goes).

``python -m bench.proxy_cpu [--seconds 10] [--window N] [--py-spy DIR]``

On the rig of :mod:`bench.proxy_data_path` (no spinnman), two paths each move 1 MiB
writes and reads back to back for ``--seconds``:

a. our ``Transceiver`` over a proxied channel: client -> service -> board;
c. our ``Transceiver`` over plain UDP: client -> board.

For each it prints MB/s and the CPU time (user + system, from ``/proc``) that every
process spent per 256-byte SCP packet: the client (split by thread), the service and
the virtual machine. With ``--py-spy DIR`` it also records the client and the service
with py-spy (``raw`` collapsed stacks) while a runs, and prints where the service's
samples fall.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import banner, cpu_seconds, load_average
from bench._rig import proxy_rig

ADDRESS = 0x60000000
CHUNK = 1024 * 1024
PACKET = 256


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid``: the main thread, and the others by id."""
    found: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            used = cpu_seconds(pid, str(task / "stat"))
        except OSError:
            continue  # the thread ended meanwhile
        label = "main (engine)" if task.name == str(pid) else f"{name} {task.name}"
        found[label] = used
    return found


def _py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    argv = ["py-spy", "record", "-r", "200", "-d", str(max(1, int(seconds)))]
    argv += ["-f", "raw", "-o", str(out), "--pid", str(pid)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _top_frames(path: Path, count: int, thread: str) -> list[tuple[float, str]]:
    """The innermost frames holding the most samples in a py-spy ``raw`` file, among
    the stacks that pass through ``thread`` (a frame name, e.g. the event loop's)."""
    innermost: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if thread not in stack:
            continue
        samples = int(number)
        total += samples
        innermost[stack.rsplit(";", 1)[-1]] += samples
    return [(100.0 * n / max(1, total), frame) for frame, n in innermost.most_common(count)]


def _run_path(
    name: str, txrx: Any, seconds: float, pids: dict[str, int], spy: Path | None
) -> dict[str, Any]:
    """Move data on one path; print and return MB/s and CPU µs per packet by process."""
    data = os.urandom(CHUNK)
    txrx.write_memory(0, 0, ADDRESS, data)  # warm up (and settle the round-trip timer)
    recorders = []
    if spy is not None:
        spy.mkdir(parents=True, exist_ok=True)
        recorders = [_py_spy(pid, seconds, spy / f"{name}-{who}.txt") for who, pid in pids.items()]
    before = {who: cpu_seconds(pid) for who, pid in pids.items()}
    threads_before = _threads(os.getpid())
    start, moved = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        txrx.write_memory(0, 0, ADDRESS, data)
        if bytes(txrx.read_memory(0, 0, ADDRESS, CHUNK)) != data:
            raise RuntimeError(f"{name}: data read back differs")
        moved += 2 * CHUNK
    elapsed = time.perf_counter() - start
    packets = moved / PACKET
    after = {who: cpu_seconds(pid) for who, pid in pids.items()}
    threads_after = _threads(os.getpid())
    print(
        f"\n## {name}: {moved / elapsed / 1e6:.2f} MB/s for {elapsed:.1f} s; load {load_average()}"
    )
    print("| process | CPU µs per packet |")
    print("|---|---|")
    total = 0.0
    for who in pids:
        each = 1e6 * (after[who] - before[who]) / packets
        total += each
        print(f"| {who} | {each:.1f} |")
        if who == "client":
            for thread, used in sorted(threads_after.items()):
                spent = used - threads_before.get(thread, 0.0)
                if spent > 0.01 * elapsed:
                    print(f"| client thread: {thread} | {1e6 * spent / packets:.1f} |")
    print(f"| all processes | {total:.1f} |")
    per_packet = {who: 1e6 * (after[who] - before[who]) / packets for who in pids}
    for recorder in recorders:
        recorder.wait(timeout=seconds + 60)
    if spy is not None and name.startswith("a"):
        print("\nservice event loop, innermost Python frames by share of its py-spy samples:")
        for share, frame in _top_frames(spy / f"{name}-service.txt", 8, "Runner.run"):
            print(f"  {share:5.1f}% {frame}")
    return {"mb_s": moved / elapsed / 1e6, "us_per_packet": per_packet}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure both paths; print the tables; return the figures by path ("a", "c")."""
    from pyspalloc.transceiver import Transceiver
    from pyspalloc.transceiver.connections import UDPConnection
    from pyspalloc.wire.consts import SCP_PORT

    banner("proxy data path: CPU per SCP packet of each process")
    with proxy_rig(with_spinnman=False) as rig:
        tx_a = Transceiver([rig.job.connect_to_board(0, 0)], window=args.window)
        tx_c = Transceiver([UDPConnection(rig.ip, SCP_PORT)], options=tx_a.options)
        print(f"# engine window: {tx_a.options.window}")
        vm_pid = rig.vm.process.pid
        me = os.getpid()
        spy = Path(args.py_spy) if args.py_spy else None
        results = {}
        results["a"] = _run_path(
            "a (proxy)",
            tx_a,
            args.seconds,
            {"client": me, "service": rig.service_pid, "virtual machine": vm_pid},
            spy,
        )
        results["c"] = _run_path(
            "c (plain UDP)", tx_c, args.seconds, {"client": me, "virtual machine": vm_pid}, None
        )
        tx_a.close()
        tx_c.close()
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.proxy_cpu", description=__doc__)
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per path")
    p.add_argument("--window", type=int, default=None, help="engine window (default: a's)")
    p.add_argument("--py-spy", default="", metavar="DIR", help="record py-spy profiles here")
    return p


def main(argv: list[str] | None = None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
