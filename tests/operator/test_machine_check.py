"""The operator's machine check on virtual machines, healthy and with injected faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.geometry import (
    BOARD_CHIPS,
    BOARD_EDGE_LINKS,
    FPGA_FLAG_REGISTER,
    BoardDefinition,
    Chip,
    Direction,
    MachineDefinition,
    Physical,
    Triad,
    dump_machine_definitions,
    ethernet_chip,
    standard_bmp_ip,
    standard_ip,
)
from pyspalloc.geometry.chip_description import parse_chip_description
from pyspalloc.machine_check import CheckOptions, check_machine
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.scp import SCPCommand, SCPRequest, SCPResult
from tests.virtual.helpers import start_vm
from tests.virtual.test_cli_and_scale import _free_base

MISSING = [Chip(3, 3), Chip(5, 6)]
WRONG_FPGA_BOARD = Triad(0, 0, 1)


def two_frames(base: str) -> MachineDefinition:
    """2 x 1 triads: triad (0, 0) in frame (0, 0), triad (1, 0) in frame (0, 1)."""
    boards: dict[Triad, BoardDefinition] = {}
    bmps: dict[tuple[int, int], str] = {}
    for x in range(2):
        bmps[(0, x)] = standard_bmp_ip(0, x, base)
        for z in range(3):
            physical = Physical(0, x, z)
            boards[Triad(x, 0, z)] = BoardDefinition(
                Triad(x, 0, z), physical, standard_ip(physical, base), bmps[(0, x)]
            )
    return MachineDefinition("two-frames", ("default",), 2, 1, boards, frozenset(), bmps)


def faulty_chips() -> dict[str, Any]:
    """Board (0,0,2) misses two chips; the link (0,0,0) north-east <-> (0,0,1) is dead."""
    dead_out = {c for (c, _), (d, _) in BOARD_EDGE_LINKS.items() if d == Direction.NORTH_EAST}
    dead_in = {c for (c, _), (d, _) in BOARD_EDGE_LINKS.items() if d == Direction.SOUTH_WEST}
    chips: list[Any] = []
    for z, dead, direction in (
        (0, dead_out, Direction.NORTH_EAST),
        (1, dead_in, Direction.SOUTH_WEST),
        (2, set(), None),
    ):
        ex, ey = ethernet_chip(Triad(0, 0, z))
        for local in BOARD_CHIPS:
            if z == 2 and local in MISSING:
                continue
            links = sorted(
                link
                for (c, link), (d, _) in BOARD_EDGE_LINKS.items()
                if c == local and d == direction and local in dead
            )
            details: dict[str, Any] = {"cores": 18, "ethernet": [ex, ey], "deadLinks": links}
            chips.append([(ex + local.x) % 24, (ey + local.y) % 12, details])
    return {"width": 24, "height": 12, "root": [0, 0], "chips": chips}


def wrong_fpga_ids(vm: VirtualMachine, board_number: int) -> None:
    """Make one board's FPGA FLAG registers read wrong IDs.

    Stands in for the ``hardware`` branch's ``VirtualBMP.fail_fpga_ids`` (not on this
    branch yet): wraps the frame's register handler.
    """
    bmp = vm.bmps[(0, 0)]
    real = bmp._fpga

    def fpga(request: SCPRequest) -> tuple[SCPResult, bytes]:
        result, payload = real(request)
        if (
            request.command == SCPCommand.LINK_READ
            and request.header.dest_cpu == board_number
            and request.arg1 & ~3 == FPGA_FLAG_REGISTER
        ):
            return result, (3).to_bytes(4, "little")
        return result, payload

    bmp._fpga = fpga  # type: ignore[method-assign]


@pytest.fixture
def faulty() -> Iterator[VirtualMachine]:
    chips = parse_chip_description(faulty_chips())
    with VirtualMachine(two_frames(_free_base()), chips=chips) as vm:
        vm.call(vm.bmps[(0, 1)].close)  # BMP of frame (0, 1) silent
        wrong_fpga_ids(vm, vm.definition.boards[WRONG_FPGA_BOARD].physical.board)
        yield vm


def test_healthy_machine_has_no_problems() -> None:
    with start_vm("spin24") as vm:
        report = check_machine(vm.definition, CheckOptions(timeout=0.3))
        assert not any(b.powered for b in vm.boards.values())  # all off again
    assert report.problems == 0
    assert len(report.boards) == 24 and len(report.links) == 72
    assert all(b.chips == 48 and b.cores == 864 for b in report.boards)
    assert all(b.bmp_version == "BC&MP 2.1.0" and b.fpga_ids == (0, 1, 2) for b in report.boards)
    assert all(k.working == k.probed == 8 for k in report.links)


def test_faults_are_reported_where_they_are(faulty: VirtualMachine) -> None:
    report = check_machine(faulty.definition, CheckOptions(timeout=0.2, power_timeout=1.0))
    boards = {b.triad: b for b in report.boards}
    assert not any(b.powered for b in faulty.boards.values())
    # BMP silent: every board of its frame says so, and nothing else was tried
    for z in range(3):
        silent = boards[Triad(1, 0, z)]
        assert len(silent.problems) == 1 and "does not answer" in silent.problems[0]
        assert not silent.booted
    # wrong FPGA IDs, after the bounded re-power
    wrong = boards[WRONG_FPGA_BOARD]
    assert wrong.fpga_ids == (3, 3, 3)
    assert any("FPGA IDs read 3, 3, 3" in p for p in wrong.problems)
    # missing chips
    lacking = boards[Triad(0, 0, 2)]
    assert lacking.missing_chips == MISSING and lacking.chips == 46
    assert lacking.cores == 46 * 18
    assert any("2 chips missing: (3,3) (5,6)" in p for p in lacking.problems)
    # the root board is fine
    root = boards[Triad(0, 0, 0)]
    assert root.problems == [] and root.chips == 48 and root.cores == 864
    # the dead link, and the links to the silent frame not probed
    links = {(k.board, k.direction): k for k in report.links}
    dead = links[(Triad(0, 0, 0), Direction.NORTH_EAST)]
    assert dead.other == Triad(0, 0, 1) and dead.working == 0 and dead.probed == 8
    assert dead.problem.startswith("dead")
    assert links[(Triad(0, 0, 0), Direction.NORTH)].problem == ""
    unprobed = [k for k in report.links if Triad(1, 0, 0) in (k.board, k.other)]
    assert unprobed and all(k.problem.startswith("not probed") for k in unprobed)


def test_cli_machine_check_json_and_table(tmp_path: Path, faulty: VirtualMachine) -> None:
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(dump_machine_definitions([faulty.definition])))
    command = [sys.executable, "-c", "from pyspalloc.cli.main import main; main()"]
    result = subprocess.run(
        [*command, "machine", "check", str(path), "--json", "--timeout", "0.2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # problems found
    out = json.loads(result.stdout)
    assert out["machine"] == "two-frames" and out["problems"] > 0
    by_triad = {(b["x"], b["y"], b["z"]): b for b in out["boards"]}
    assert by_triad[(0, 0, 2)]["missing_chips"] == [[3, 3], [5, 6]]
    assert by_triad[(0, 0, 0)]["ok"] is True
    wide = {**os.environ, "COLUMNS": "300"}
    table = subprocess.run(
        [*command, "machine", "check", str(path), "--timeout", "0.2"],
        capture_output=True, text=True, timeout=300, check=False, env=wide,
    )  # fmt: skip
    assert table.returncode == 1
    assert "does not answer" in table.stdout and "dead" in table.stdout
    assert "missing" in table.stdout
