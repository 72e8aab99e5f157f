"""spinnman 1!7.3.0 sees a virtual machine given a recorded description exactly as recorded."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pyspalloc.geometry import Triad
from pyspalloc.geometry.chip_description import ChipDescription, load_chip_description
from pyspalloc.transceiver import create_transceiver
from pyspalloc.virtual import VirtualMachine
from tests.virtual.helpers import start_vm
from tests.virtual.test_cli_and_scale import _free_base
from tests.virtual.test_recorded import RECORDED, nine_boards

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
    pytest.mark.skipif(not RECORDED.is_dir(), reason="peer data not present"),
]

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
chips = {
    f"{c.x},{c.y}": [c.n_processors, sorted(l.source_link_id for l in c.router.links),
                     [c.nearest_ethernet_x, c.nearest_ethernet_y]]
    for c in machine.chips
}
txrx.close()
print(json.dumps({"size": [machine.width, machine.height], "chips": chips}), flush=True)
"""


def _spinnman_view(python: Path, ip: str) -> dict[str, object]:
    result = subprocess.run(
        [str(python), "-c", SCRIPT, ip], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def _expected(recorded: ChipDescription) -> dict[str, list[object]]:
    return {
        f"{x},{y}": [chip.cores, list(chip.links), list(chip.ethernet)]
        for (x, y), chip in sorted(recorded.chips.items())
    }


def _ours(ip: str) -> dict[str, list[object]]:
    with create_transceiver(ip, timeout=0.5) as txrx:
        machine = txrx.get_machine_details()
    return {f"{c.x},{c.y}": [c.n_cores, sorted(c.links), list(c.nearest_ethernet)] for c in machine}


def test_spinnman_sees_one_recorded_board(interop_python: Callable[..., Path]) -> None:
    python = interop_python(SPINNMAN)
    recorded = load_chip_description(RECORDED / "spinn4.json")
    with start_vm("spin5", booted=True, chips=recorded) as vm:
        ip = next(iter(vm.boards.values())).ip
        theirs = _spinnman_view(python, ip)
        ours = _ours(ip)
    assert theirs["size"] == [8, 8]
    assert theirs["chips"] == ours == _expected(recorded)


def test_spinnman_sees_nine_recorded_boards(interop_python: Callable[..., Path]) -> None:
    python = interop_python(SPINNMAN)
    recorded = load_chip_description(RECORDED / "h40w16.json")
    with VirtualMachine(nine_boards(_free_base()), booted=True, chips=recorded) as vm:
        ip = vm.boards[Triad(0, 0, 0)].ip
        theirs = _spinnman_view(python, ip)
        ours = _ours(ip)
    assert theirs["size"] == [16, 40]
    assert theirs["chips"] == ours == _expected(recorded)
