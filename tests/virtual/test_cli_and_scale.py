"""``pyspalloc virtual`` in a subprocess, SpiNNaker1M scale, and round-trip throughput."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from pyspalloc.wire.scp import scp_request
from tests.virtual.helpers import LineReader

START_SCRIPT = r"""
import json, resource, sys, time
from pyspalloc.geometry import builtin_machine
from pyspalloc.virtual import VirtualMachine
start = time.perf_counter()
definition = builtin_machine("spinnaker1m", sys.argv[1])
vm = VirtualMachine(definition, powered=True, booted=sys.argv[2] == "1")
vm.start()
elapsed = time.perf_counter() - start
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
root = vm.boards[(0, 0, 0)]
machine = root.machine
print(json.dumps({
    "start_s": elapsed, "rss_mb": rss, "boards": len(vm.boards), "bmps": len(vm.bmps),
    "chips": len(machine.chips) if machine else 0,
    "size": [machine.width, machine.height] if machine else None,
}))
vm.stop()
"""


def _free_base() -> str:
    return f"127.{random.randrange(160, 251)}.0.0"


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from pyspalloc.cli.main import main; main()", "virtual", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until_ready(process: subprocess.Popen[str], timeout: float = 60) -> list[dict]:
    assert process.stdout is not None
    reader = LineReader(process.stdout)
    boards = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = reader.next(max(0.0, deadline - time.monotonic()))
            if not line or line.strip() == "ready":
                break
            boards.append(json.loads(line))
    except queue.Empty:
        line = ""
    if line.strip() == "ready":
        return boards
    process.kill()
    process.wait(timeout=10)
    err = process.stderr.read() if process.stderr else ""
    pytest.fail(f"no 'ready' line; stderr: {err[-2000:]}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_runs_until_signalled(sig: int) -> None:
    base = _free_base()
    process = _cli("--machine", "spin24", "--address-base", base, "--booted")
    try:
        boards = _read_until_ready(process)
        assert len(boards) == 24
        first = boards[0]
        assert set(first) == {"x", "y", "z", "cabinet", "frame", "board", "ip", "bmp_ip"}
        assert first["bmp_ip"] == base
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            sock.sendto(scp_request(255, 255, 0, 0).to_bytes(), (first["ip"], 17893))
            reply, _ = sock.recvfrom(400)
            assert reply[10] == 0x80
        process.send_signal(sig)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_cli_rejects_unknown_machine() -> None:
    process = _cli("--machine", "no-such-machine")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "no-such-machine" in err


@pytest.mark.slow
@pytest.mark.parametrize("booted", [False, True], ids=["powered", "booted"])
def test_spinnaker1m_starts_in_seconds_and_small(booted: bool) -> None:
    result = subprocess.run(
        [sys.executable, "-c", START_SCRIPT, _free_base(), "1" if booted else "0"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print("spinnaker1m:", figures)
    assert figures["boards"] == 1200 and figures["bmps"] == 50
    assert figures["start_s"] < 30
    assert figures["rss_mb"] < 400
    if booted:
        assert figures["chips"] == 57600 and figures["size"] == [240, 240]


@pytest.mark.slow
def test_round_trips_per_second() -> None:
    """256-byte WRITE+READ pairs per second from one client socket, 8 in flight."""
    process = _cli("--machine", "spin5", "--address-base", _free_base(), "--booted")
    try:
        (board,) = _read_until_ready(process)
        address = (board["ip"], 17893)
        data = os.urandom(256)
        total = 8000
        packets = []
        for i in range(total):
            where = 0x60000000 + 256 * (i // 2 % 4096)
            if i % 2 == 0:
                request = scp_request(0, 0, 0, 3, where, 256, 2, data, sequence=i)
            else:
                request = scp_request(0, 0, 0, 2, where, 256, 2, sequence=i)
            packets.append(request.to_bytes())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            outstanding: dict[int, bytes] = {}
            resends = 0
            start = time.perf_counter()
            sent = received = 0
            while received < total:
                while sent < total and len(outstanding) < 8:
                    outstanding[sent & 0xFFFF] = packets[sent]
                    sock.sendto(packets[sent], address)
                    sent += 1
                try:
                    reply, _ = sock.recvfrom(400)
                except TimeoutError:  # a lost datagram: resend the window, as spinnman does
                    resends += 1
                    assert resends < 5, "board stopped answering"
                    for packet in outstanding.values():
                        sock.sendto(packet, address)
                    continue
                if outstanding.pop(int.from_bytes(reply[12:14], "little"), None) is not None:
                    received += 1
            elapsed = time.perf_counter() - start
        pairs = total / 2 / elapsed
        print(f"round trips: {pairs:.0f} WRITE+READ pairs/s ({total / elapsed:.0f} requests/s)")
        assert pairs > 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
