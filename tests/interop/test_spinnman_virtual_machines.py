"""spinnman 1!7.3.0 discovers multi-board virtual machines (pre-booted, as spalloc gives)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pyspalloc.geometry import Triad
from tests.virtual.helpers import start_vm

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SPINNMAN = "spinnman==1!7.3.0"

SCRIPT = r"""
import json, sys
from spinnman.config_setup import unittest_setup
unittest_setup()
from spinn_utilities.config_holder import set_config
set_config("Machine", "version", "5")
from spinnman.transceiver import create_transceiver_from_hostname

txrx = create_transceiver_from_hostname(sys.argv[1])
machine = txrx.get_machine_details()
out = {
    "chips": machine.n_chips,
    "size": [machine.width, machine.height],
    "ethernets": sorted([c.x, c.y, c.ip_address] for c in machine.ethernet_connected_chips),
    "cores": sum(c.n_processors for c in machine.chips),
}
txrx.discover_scamp_connections()
out["connections"] = sorted(
    [c.chip_x, c.chip_y, c.remote_ip_address]
    for c in txrx._scamp_connections
    if (c.chip_x, c.chip_y) != (255, 255)
)
data = bytes(range(256)) * 8
chip = machine.ethernet_connected_chips[-1]
txrx.write_memory(chip.x + 1, chip.y + 1, 0x60000000, data)
out["memory_ok"] = bytes(txrx.read_memory(chip.x + 1, chip.y + 1, 0x60000000, len(data))) == data
txrx.close()
print(json.dumps(out), flush=True)
"""


@pytest.mark.parametrize(
    ("powered", "chips", "size"),
    [
        ([Triad(0, 0, 0), Triad(0, 0, 1), Triad(0, 0, 2)], 144, [16, 16]),
        (None, 1152, [48, 24]),
    ],
    ids=["triad", "spin24-torus"],
)
def test_spinnman_discovers_booted_machine(
    interop_python: Callable[..., Path],
    powered: list[Triad] | None,
    chips: int,
    size: list[int],
) -> None:
    python = interop_python(SPINNMAN)
    with start_vm("spin24", powered=powered is None) as vm:
        for triad in powered or ():
            vm.boards[triad].power_on()
        root = vm.boards[Triad(0, 0, 0)]
        root.boot_here()
        members = [b for b in vm.boards.values() if b.booted]
        result = subprocess.run(
            [str(python), "-c", SCRIPT, root.ip],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["chips"] == chips
    assert out["cores"] == chips * 18
    assert out["size"] == size
    assert len(out["ethernets"]) == len(members)
    assert {e[2] for e in out["ethernets"]} == {b.ip for b in members}
    assert sorted(out["connections"]) == sorted(out["ethernets"])
    assert out["memory_ok"] is True
