"""Decoders under coverage-guided fuzzing (atheris), and a virtual board under 20,000
fuzz datagrams on its SCP (17893) and boot (54321) ports: it keeps answering VER.

(tests/wire/test_fuzz.py and tests/virtual/test_faults.py hold the hypothesis versions;
these add volume and coverage guidance.)
"""

from __future__ import annotations

import importlib.util
import random
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pyspalloc.geometry import builtin_machine
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.boot import boot_messages
from pyspalloc.wire.scp import SCPCommand, SCPResponse, SCPResult, scp_request
from tests.reliability.support import BOOT_PORT, SCP_PORT
from tests.support.addresses import free_virtual_base

HERE = Path(__file__).parent


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
def test_atheris_decoders() -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "atheris_wire.py"), "-runs=150000", "-max_total_time=25",
         "-seed=7"],
        capture_output=True, text=True, timeout=120, cwd=HERE.parent.parent,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    runs = re.search(r"Done (\d+) runs", output)
    assert runs and int(runs.group(1)) > 10_000, output[-2000:]


def _ver(sock: socket.socket, ip: str, sequence: int) -> SCPResponse | None:
    """One VER to ``ip`` (three tries); the matching response or None."""
    request = scp_request(0, 0, 0, SCPCommand.VER, sequence=sequence).to_bytes()
    for _ in range(3):
        sock.sendto(request, (ip, SCP_PORT))
        for _ in range(200):
            try:
                data, _ = sock.recvfrom(4096)
            except TimeoutError:
                break
            try:
                response = SCPResponse.from_bytes(data)
            except ValueError:
                continue
            if response.sequence == sequence:
                return response
    return None


def _fuzz_datagram(rng: random.Random, valid: list[bytes]) -> bytes:
    roll = rng.random()
    if roll < 0.4:
        return rng.randbytes(rng.choice([0, 1, 2, 3, 4, 10, 14, 17, 24, 100, 300, 1100]))
    data = bytearray(rng.choice(valid))
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(3)
        if op == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1:
            data = data[: rng.randrange(len(data) + 1)]
        else:
            data += rng.randbytes(rng.randrange(1, 16))
    return bytes(data)


def test_board_answers_ver_through_twenty_thousand_fuzz_datagrams() -> None:
    rng = random.Random(54321)
    definition = builtin_machine("spin24", free_virtual_base())
    safe = [c for c in SCPCommand if c not in (SCPCommand.VER,)]
    valid = [
        scp_request(0, 0, rng.randrange(18), rng.choice(safe), rng.randrange(1 << 32),
                    rng.randrange(1 << 32), rng.randrange(1 << 32), rng.randbytes(8)).to_bytes()
        for _ in range(50)
    ] + [m.to_bytes() for m in boot_messages(bytes(range(256)) * 4)]  # fmt: skip
    with VirtualMachine(definition, booted=True) as vm:
        root = vm.boards[(0, 0, 0)]
        other = next(b for t, b in vm.boards.items() if t != (0, 0, 0))
        sent = answered = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.5)
            for round_ in range(40):
                for _ in range(500):
                    port = SCP_PORT if rng.random() < 0.5 else BOOT_PORT
                    sock.sendto(_fuzz_datagram(rng, valid), (root.ip, port))
                    sent += 1
                # drain what the board said, then check it still answers VER
                sock.settimeout(0.01)
                for _ in range(2000):
                    try:
                        sock.recvfrom(4096)
                    except TimeoutError:
                        break
                sock.settimeout(0.5)
                for board in (root, other):
                    response = _ver(sock, board.ip, 40_000 + round_)
                    assert response is not None, f"no VER answer from {board.ip} after {sent}"
                    assert response.result == SCPResult.RC_OK
                    assert b"SC&MP" in response.payload or b"SpiNNaker" in response.payload
                    answered += 1
                if not root.booted:  # fuzzed boot or power packets may reset it: allowed
                    vm.call(root.boot_here)
    assert sent == 20_000 and answered == 80
