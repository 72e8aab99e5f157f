"""Virtual boards reproduce recorded real machines: missing chips, 17-core chips, dead links."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyspalloc.geometry import (
    BoardDefinition,
    MachineDefinition,
    MachineDefinitionError,
    Physical,
    Triad,
    builtin_machine,
    dump_machine_definitions,
    load_machine_definitions,
    standard_bmp_ip,
    standard_ip,
)
from pyspalloc.geometry.chip_description import (
    ChipDescription,
    load_chip_description,
    parse_chip_description,
)
from pyspalloc.transceiver import MachineInfo, create_transceiver
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.scp import SCPCommand, SCPResult
from tests.virtual.helpers import client, start_vm
from tests.virtual.test_cli_and_scale import _cli, _free_base, _read_until_ready

RECORDED = Path("/work/shared/peer-data/recorded-machines")
pytestmark = pytest.mark.skipif(not RECORDED.is_dir(), reason="peer data not present")


def nine_boards(base: str) -> MachineDefinition:
    """1 x 3 triads in one frame: the shape of the recorded h40w16 machine."""
    bmp = standard_bmp_ip(0, 0, base)
    boards = {}
    for y in range(3):
        for z in range(3):
            physical = Physical(0, 0, 3 * y + z)
            boards[Triad(0, y, z)] = BoardDefinition(
                Triad(0, y, z), physical, standard_ip(physical, base), bmp
            )
    return MachineDefinition("h40w16", ("default",), 1, 3, boards, frozenset(), {(0, 0): bmp})


def assert_same(machine: MachineInfo, recorded: ChipDescription) -> None:
    """Same size, chips, core counts and working links as the recording."""
    assert (machine.width, machine.height) == (recorded.width, recorded.height)
    assert set(machine.chips) == set(recorded.chips)
    for xy, chip in recorded.chips.items():
        found = machine.chips[xy]
        assert found.n_cores == chip.cores, xy
        assert set(found.links) == set(chip.links), xy
        assert found.nearest_ethernet == chip.ethernet, xy
        assert found.is_ethernet == (chip.ip is not None), xy


def test_one_board_with_17_core_chips() -> None:
    recorded = load_chip_description(RECORDED / "spinn4.json")
    assert sorted({c.cores for c in recorded.chips.values()}) == [17, 18]
    with start_vm("spin5", booted=True, chips=recorded) as vm:
        board = next(iter(vm.boards.values()))
        with create_transceiver(board.ip, timeout=0.5) as txrx:
            machine = txrx.get_machine_details()
        assert_same(machine, recorded)
        assert machine.total_cores == sum(c.cores for c in recorded.chips.values()) == 856
        # a 17-core chip: core 17 is DEAD, not idle, and not counted as free
        assert len(machine.chips[(1, 1)].usable_cores) == 16
        with client(board.ip) as scp:
            count = scp.ok(0, 0, 0, 15, 0, 15)  # CMD_COUNT: idle cores of app 0
            assert int.from_bytes(count.payload[:4], "little") == 856 - 48


def test_nine_boards_with_missing_chips_and_dead_links() -> None:
    recorded = load_chip_description(RECORDED / "h40w16.json")
    assert len(recorded.chips) == 429  # 432 less 3 missing
    with VirtualMachine(nine_boards(_free_base()), booted=True, chips=recorded) as vm:
        root = vm.boards[Triad(0, 0, 0)]
        with create_transceiver(root.ip, timeout=0.5) as txrx:
            machine = txrx.get_machine_details()
        assert_same(machine, recorded)
        missing = (2, 1)
        assert missing not in recorded.chips
        with client(root.ip) as scp:
            reply = scp.request(*missing, 0, SCPCommand.VER)
            assert reply.result == SCPResult.RC_ROUTE
            # a dead link between two present chips: (1, 1) link 0 ... and LINK_READ over it
            dead = recorded.chips[(1, 1)].dead_links
            assert 0 in dead
            reply = scp.request(1, 1, 0, SCPCommand.LINK_READ, 0xF5007F00, 4, 0)
            assert reply.result == SCPResult.RC_TIMEOUT


def test_definition_key_names_the_description(tmp_path: Path) -> None:
    obj = dump_machine_definitions([builtin_machine("spin5", _free_base())])
    obj["machines"][0]["chips"] = "spinn4.json"
    (tmp_path / "spinn4.json").write_text((RECORDED / "spinn4.json").read_text())
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(obj))
    (definition,) = load_machine_definitions(path)
    assert definition.chips == str(tmp_path / "spinn4.json")
    assert dump_machine_definitions([definition])["machines"][0]["chips"] == definition.chips
    with VirtualMachine(definition, booted=True) as vm:
        board = next(iter(vm.boards.values()))
        assert board.layout is not None and board.layout.cores[(1, 1)] == 17
        with create_transceiver(board.ip, timeout=0.5) as txrx:
            assert txrx.get_machine_details().total_cores == 856


def test_bad_descriptions_are_refused() -> None:
    with pytest.raises(MachineDefinitionError, match=r"chips\[5\]\.cores"):
        load_chip_description(RECORDED / "spinn4_fiddle.json")  # a chip with 117 cores
    good = json.loads((RECORDED / "spinn4.json").read_text())
    good["chips"][3][2]["ethernet"] = [4, 4]
    with pytest.raises(MachineDefinitionError, match="ethernet"):
        parse_chip_description(good)
    # a recorded board where the definition has none
    recorded = load_chip_description(RECORDED / "h40w16.json")
    with pytest.raises(
        MachineDefinitionError,
        match=r"recorded board with Ethernet chip \(\d+, \d+\) is not a live board",
    ):
        VirtualMachine(builtin_machine("spin5", _free_base()), chips=recorded)


def test_cli_chips_option() -> None:
    base = _free_base()
    process = _cli(
        "--machine", "spin5", "--address-base", base, "--booted", "--chips",
        str(RECORDED / "spinn4.json"),
    )  # fmt: skip
    try:
        (board,) = _read_until_ready(process)
        with create_transceiver(board["ip"], timeout=0.5) as txrx:
            assert txrx.get_machine_details().total_cores == 856
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-c", "from pyspalloc.cli.main import main; main()", "virtual",
         "--machine", "spin5", "--chips", str(RECORDED / "spinn4_fiddle.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "cores" in bad.stderr
