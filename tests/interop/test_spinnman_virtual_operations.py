"""spinnman 1!7.3.0 drives a pre-booted virtual board the way a spalloc job does.

Exercises the Transceiver operations beyond boot and memory: reverse tags, router
diagnostics, cpu infos, SDRAM allocation, multicast and fixed routes, execute_flood
(AR + APP_COPY_RUN along the parent tree), core-state counts, signals and app stop.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.virtual.helpers import start_vm

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SPINNMAN = "spinnman==1!7.3.0"

SCRIPT = r"""
import json, os, sys
from spinnman.config_setup import unittest_setup
unittest_setup()
from spinn_utilities.config_holder import set_config
set_config("Machine", "version", "5")
from spinn_machine import CoreSubsets, MulticastRoutingEntry, RoutingEntry
from spinn_machine.tags import ReverseIPTag
from spinnman.connections.udp_packet_connections import BootConnection, SCAMPConnection
from spinnman.data.spinnman_data_writer import SpiNNManDataWriter
from spinnman.messages.scp.enums import Signal
from spinnman.model.enums import CPUState
from spinnman.transceiver import create_transceiver_from_connections

ip = sys.argv[1]
out = {}
txrx = create_transceiver_from_connections([
    SCAMPConnection(chip_x=0, chip_y=0, remote_host=ip), BootConnection(remote_host=ip)])
machine = txrx.get_machine_details()
SpiNNManDataWriter.mock().set_machine(machine)  # execute_flood reads the machine from here
out["chips"] = machine.n_chips
txrx.set_reverse_ip_tag(ReverseIPTag(ip, 2, 40321, 1, 2, 3))
out["tags"] = sorted(
    [type(t).__name__, t.tag, t.port, t.board_address] for t in txrx.get_tags())
txrx.clear_router_diagnostic_counters(0, 0)
diagnostics = txrx.get_router_diagnostics(0, 0)
out["diagnostics"] = diagnostics.n_local_multicast_packets
subsets = CoreSubsets()
subsets.add_processor(0, 0, 1)
subsets.add_processor(3, 3, 5)
infos = txrx.get_cpu_infos(subsets)
out["cpu_states"] = sorted(infos.get_cpu_info(*xyp).state.name for xyp in infos)
out["malloc"] = txrx.malloc_sdram(1, 1, 1000, 17, tag=3)
routes = [MulticastRoutingEntry(0x10000 * i, 0xFFFF0000, RoutingEntry(
    processor_ids=[1 + i % 16], link_ids=[i % 6])) for i in range(20)]
txrx.load_multicast_routes(1, 1, routes, 17)
read = txrx.get_multicast_routes(1, 1)
out["routes"] = sorted((r.key, r.mask, r.spinnaker_route) for r in read) == sorted(
    (r.key, r.mask, r.spinnaker_route) for r in routes)
txrx.load_fixed_route(2, 2, RoutingEntry(processor_ids=[4], link_ids=[1]), 17)
out["fixed"] = txrx.read_fixed_route(2, 2, 17).spinnaker_route
out["fixed_expected"] = RoutingEntry(processor_ids=[4], link_ids=[1]).spinnaker_route
cores = CoreSubsets()
for chip in machine.chips:
    cores.add_processor(chip.x, chip.y, 1)
    cores.add_processor(chip.x, chip.y, 2)
binary = os.path.join(sys.argv[2], "app.aplx")
with open(binary, "wb") as file:
    file.write(os.urandom(4096))
txrx.execute_flood(cores, binary, 30, wait=True)
txrx.wait_for_cores_to_be_in_state(cores, 30, CPUState.READY, timeout=30)
out["ready"] = txrx.get_core_state_count(30, CPUState.READY)
txrx.send_signal(30, Signal.START)
out["running"] = txrx.get_core_state_count(30, CPUState.RUNNING)
txrx.stop_application(30)
out["after_stop"] = txrx.get_core_state_count(30, CPUState.RUNNING)
out["idle"] = txrx.get_core_state_count(0, CPUState.IDLE)
out["drift"] = txrx.get_clock_drift(1, 1)
txrx.close()
print(json.dumps(out), flush=True)
"""


def test_spinnman_operations_on_prebooted_board(
    interop_python: Callable[..., Path], tmp_path: Path
) -> None:
    python = interop_python(SPINNMAN)
    with start_vm("spin5", booted=True) as vm:
        (board,) = vm.boards.values()
        result = subprocess.run(
            [str(python), "-c", SCRIPT, board.ip, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        delivered = list(board.reverse_tag_packets)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["chips"] == 48
    assert ["ReverseIPTag", 2, 40321, board.ip] in out["tags"]
    assert out["diagnostics"] == 0
    assert out["cpu_states"] == ["IDLE", "IDLE"]
    assert out["malloc"] == 0x60240018
    assert out["routes"] is True
    assert out["fixed"] == out["fixed_expected"]
    assert out["ready"] == 96
    assert out["running"] == 96
    assert out["after_stop"] == 0
    assert out["idle"] == 48 * 17
    assert out["drift"] == 0.0
    assert delivered == []
