"""The real spinnman 1!7.3.0 boots and uses an unbooted virtual SpiNN-5 board."""

from __future__ import annotations

import json
import queue
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyspalloc.wire.eieio import EIEIODataMessage, EIEIOType
from tests.virtual.helpers import LineReader, start_vm

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SPINNMAN = "spinnman==1!7.3.0"
KEYS = (0x1234, 0xBEEF0001, 0xCAFE0002)

SCRIPT = r"""
import json, os, sys, time
from spinnman.config_setup import unittest_setup
unittest_setup()
from spinn_utilities.config_holder import set_config
set_config("Machine", "version", "5")
from spinnman.transceiver import create_transceiver_from_hostname
from spinnman.connections.udp_packet_connections import EIEIOConnection
from spinn_machine.tags import IPTag

ip = sys.argv[1]
out = {}
start = time.time()
txrx = create_transceiver_from_hostname(ip)
out["create_s"] = time.time() - start
machine = txrx.get_machine_details()
out["chips"] = machine.n_chips
out["cores"] = sum(chip.n_processors for chip in machine.chips)
out["size"] = [machine.width, machine.height]
data = os.urandom(1 << 20)
start = time.time()
txrx.write_memory(0, 0, 0x60000000, data)
out["write_s"] = time.time() - start
start = time.time()
back = txrx.read_memory(0, 0, 0x60000000, len(data))
out["read_s"] = time.time() - start
out["memory_ok"] = bytes(back) == data
connection = EIEIOConnection(local_host="127.0.0.1")
txrx.set_ip_tag(IPTag(None, 0, 0, 1, "127.0.0.1", connection.local_port, strip_sdp=True))
out["tags"] = [
    [t.tag, t.ip_address, t.port, t.strip_sdp, t.board_address] for t in txrx.get_tags()
]
print(json.dumps({"tag_port": connection.local_port}), flush=True)
message = connection.receive_eieio_message(timeout=20)
keys = []
while message.is_next_element:
    keys.append(message.next_element.key)
out["keys"] = keys
txrx.close()
print(json.dumps(out), flush=True)
"""


def _line(process: subprocess.Popen[str], reader: LineReader, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = reader.next(max(0.0, deadline - time.monotonic()))
            if line.startswith("{") or not line:
                break
    except queue.Empty:
        line = ""
    if line.startswith("{"):
        return line
    process.kill()
    process.wait(timeout=10)
    err = process.stderr.read() if process.stderr else ""
    pytest.fail(f"spinnman script gave no result line; stderr:\n{err[-4000:]}")


def test_spinnman_boots_and_uses_virtual_board(
    interop_python: Callable[..., Path],
    run_interop_script: Callable[..., subprocess.Popen[str]],
) -> None:
    python = interop_python(SPINNMAN)
    with start_vm("spin5") as vm:  # an unbooted, unpowered board on 127.X.0.1
        (board,) = vm.boards.values()
        board.power_on()
        assert not board.booted
        process = run_interop_script(python, SCRIPT, board.ip)
        assert process.stdout is not None
        reader = LineReader(process.stdout)
        first = json.loads(_line(process, reader, 120))
        assert board.booted
        message = EIEIODataMessage(EIEIOType.KEY_32, KEYS)
        board.send_from_core(0, 0, 1, 1, message.to_bytes())
        result = json.loads(_line(process, reader, 60))
        process.wait(timeout=30)
    print("spinnman result:", {k: v for k, v in result.items() if k != "tags"})

    assert first["tag_port"] > 0
    assert result["chips"] == 48
    assert result["cores"] == 48 * 18
    assert result["size"] == [8, 8]
    assert result["memory_ok"] is True
    assert [1, "127.0.0.1", first["tag_port"], True, board.ip] in result["tags"]
    assert len(result["tags"]) == 1
    assert result["keys"] == list(KEYS)
