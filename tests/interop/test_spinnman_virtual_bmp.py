"""spinnman 1!7.3.0 talks to a virtual BMP: version check, FPGA registers, power.

spinnman 7.3.0 cannot decode the (rc-only) answers to BMP power and FPGA register writes:
it tries to instantiate its abstract ``BMPOKResponse``. The commands still reach the BMP
and take effect, so the test accepts exactly that client error.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pyspalloc.geometry import Direction
from tests.virtual.helpers import start_vm

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SPINNMAN = "spinnman==1!7.3.0"

SCRIPT = r"""
import json, sys
from spinnman.config_setup import unittest_setup
unittest_setup()
from spinn_utilities.config_holder import set_config
set_config("Machine", "version", "5")
from spinnman.messages.scp.enums import PowerCommand
from spinnman.model.bmp_connection_data import BMPConnectionData
from spinnman.transceiver import create_transceiver_from_hostname

ip, bmp_ip = sys.argv[1], sys.argv[2]
bmp = BMPConnectionData(bmp_ip, [0], None)
txrx = create_transceiver_from_hostname(ip, bmp_connection_data=bmp)
out = {}
version = txrx.read_bmp_version(0)
out["bmp"] = [version.name, list(version.version_number)]
out["flags"] = [txrx.read_fpga_register(fpga, 0x40004, 0) & 3 for fpga in range(3)]
try:
    txrx.write_fpga_register(2, 0x5C, 1, 0)
except Exception as error:  # 7.3.0 cannot build its own BMPOKResponse (abstract class)
    out["write_error"] = "BMPOKResponse" in str(error)
out["stop"] = txrx.read_fpga_register(2, 0x5C, 0)
out["chips"] = txrx.get_machine_details().n_chips
print(json.dumps(out), flush=True)
sys.stdin.readline()
try:
    txrx._power(PowerCommand.POWER_OFF)
    done = {"off": True}
except Exception as error:  # the same 7.3.0 BMPOKResponse bug; the command was sent
    done = {"off": "BMPOKResponse" in str(error)}
txrx.close()
print(json.dumps(done), flush=True)
"""


def test_spinnman_uses_virtual_bmp(interop_python: Callable[..., Path]) -> None:
    python = interop_python(SPINNMAN)
    with start_vm("spin5", powered=True) as vm:
        (board,) = vm.boards.values()
        process = subprocess.Popen(
            [str(python), "-c", SCRIPT, board.ip, board.definition.bmp_ip],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None and process.stdin is not None
            line = process.stdout.readline()
            assert line.startswith("{"), process.communicate(timeout=30)[1][-4000:]
            out = json.loads(line)
            assert board.booted and not board.links_enabled[Direction.NORTH]
            process.stdin.write("\n")
            process.stdin.flush()
            line = process.stdout.readline()
            assert line.startswith("{"), process.communicate(timeout=30)[1][-4000:]
            assert json.loads(line) == {"off": True}
            assert process.wait(timeout=60) == 0
            assert not board.powered and not board.booted
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
    assert out["bmp"][0] == "BC&MP" and out["bmp"][1][0] == 2
    assert out["flags"] == [0, 1, 2]
    assert out["stop"] == 1
    assert out.get("write_error", True) is True  # only that known client bug, if any
    assert out["chips"] == 48
