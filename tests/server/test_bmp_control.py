"""BMPMachineController against virtual BMPs and boards over real UDP."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from pyspalloc.geometry import MachineDefinition, Triad, builtin_machine
from pyspalloc.server.allocator import perimeter_for
from pyspalloc.server.bmp_control import (
    BMPBoardsFailed,
    BMPControlError,
    BMPControlOptions,
    BMPMachineController,
)
from pyspalloc.transceiver import Transceiver, UDPConnection
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.scp import SCPCommand, SCPRequest
from tests.support.addresses import free_virtual_base
from tests.support.virtual_machines import FAST_BMP

JOB = [Triad(0, 0, 0), Triad(0, 0, 1), Triad(0, 0, 2)]


@pytest.fixture
def machine() -> MachineDefinition:
    return builtin_machine("spin24", free_virtual_base())


@pytest.fixture
def vm(machine: MachineDefinition) -> Iterator[VirtualMachine]:
    with VirtualMachine(machine) as virtual:
        yield virtual


def discovered_chips(machine: MachineDefinition, root: Triad) -> int:
    ip = machine.boards[root].ip
    with Transceiver([UDPConnection(ip, 17893, chip_x=0, chip_y=0)]) as transceiver:
        return transceiver.get_machine_details().n_chips


def test_power_on_boots_only_the_job(machine: MachineDefinition, vm: VirtualMachine) -> None:
    controller = BMPMachineController(FAST_BMP)
    # every neighbour is powered (as another job's boards would be)
    for board in vm.boards.values():
        board.power_on()
    controller.power_on_job(machine, JOB, perimeter_for(machine, JOB))
    booted = {t for t, b in vm.boards.items() if b.booted}
    assert booted == set(JOB)
    assert discovered_chips(machine, JOB[0]) == 144
    for triad, direction in perimeter_for(machine, JOB):
        assert not vm.boards[triad].links_enabled[direction]
    controller.power_off(machine, JOB)
    assert not any(vm.boards[t].powered for t in JOB)
    assert vm.boards[Triad(1, 0, 0)].powered  # others untouched


def test_without_perimeter_the_boot_floods_further(
    machine: MachineDefinition, vm: VirtualMachine
) -> None:
    for board in vm.boards.values():
        board.power_on()
    BMPMachineController(FAST_BMP).power_on_job(machine, JOB, [])
    assert sum(b.booted for b in vm.boards.values()) > len(JOB)
    assert discovered_chips(machine, JOB[0]) > 144


def test_power_on_of_unpowered_machine(machine: MachineDefinition, vm: VirtualMachine) -> None:
    controller = BMPMachineController(FAST_BMP)
    started = time.monotonic()
    controller.power_on_job(machine, JOB, perimeter_for(machine, JOB))
    assert time.monotonic() - started < 30
    assert {t for t, b in vm.boards.items() if b.powered} == set(JOB)
    assert discovered_chips(machine, JOB[0]) == 144
    # a second power-on resets and boots again
    controller.power_on_job(machine, JOB, perimeter_for(machine, JOB))
    assert discovered_chips(machine, JOB[0]) == 144


def test_single_board_job(machine: MachineDefinition, vm: VirtualMachine) -> None:
    board = [Triad(1, 1, 1)]
    BMPMachineController(FAST_BMP).power_on_job(machine, board, perimeter_for(machine, board))
    assert discovered_chips(machine, board[0]) == 48


def _drop_power_commands(vm: VirtualMachine, count: int) -> list[int]:
    """Make every BMP ignore its next ``count`` power commands; return the seen counter."""
    seen = [0]
    for bmp in vm.bmps.values():
        original = bmp._on_packet

        def on_packet(data: bytes, sender: tuple[str, int], original=original) -> None:  # type: ignore[no-untyped-def]
            request = SCPRequest.from_bytes(data)
            if request.command == SCPCommand.BMP_POWER:
                seen[0] += 1
                if seen[0] <= count:
                    return
            original(data, sender)

        bmp._on_packet = on_packet  # type: ignore[method-assign]
    return seen


def test_bmp_failing_once_is_retried(machine: MachineDefinition) -> None:
    vm = VirtualMachine(machine)
    seen = _drop_power_commands(vm, 1)
    with vm:
        BMPMachineController(FAST_BMP).power_on_job(machine, JOB, perimeter_for(machine, JOB))
        assert seen[0] >= 2
        assert {t for t, b in vm.boards.items() if b.booted} == set(JOB)


def test_bmp_failing_always_gives_up_in_bounded_time(machine: MachineDefinition) -> None:
    vm = VirtualMachine(machine)
    seen = _drop_power_commands(vm, 1000)
    with vm:
        started = time.monotonic()
        with pytest.raises(BMPControlError, match="failed after 3 attempts"):
            BMPMachineController(FAST_BMP).power_off(machine, JOB)
        assert time.monotonic() - started < 20  # 3 x 1 s, with room for a loaded machine
        assert seen[0] == 3


def test_unknown_board_is_an_error(machine: MachineDefinition) -> None:
    with pytest.raises(BMPControlError, match="not in machine"):
        BMPMachineController(FAST_BMP).power_off(machine, [Triad(9, 9, 0)])


def test_board_whose_fpgas_are_not_ready_is_powered_again(machine: MachineDefinition) -> None:
    vm = VirtualMachine(machine)
    bmp = next(iter(vm.bmps.values()))
    bmp.fail_fpga_ids(machine.boards[JOB[1]].physical.board, power_ons=1)
    with vm:
        BMPMachineController(FAST_BMP).power_on_job(machine, JOB, perimeter_for(machine, JOB))
        ons = [mask for _, on, mask in bmp.power_log if on]
        # one power-on for the job, a second one for the unready board only
        assert ons == [0b111, 1 << machine.boards[JOB[1]].physical.board]
        assert {t for t, b in vm.boards.items() if b.booted} == set(JOB)


def test_fpgas_never_ready_fail_in_bounded_time(machine: MachineDefinition) -> None:
    vm = VirtualMachine(machine)
    bmp = next(iter(vm.bmps.values()))
    for triad in JOB:
        bmp.fail_fpga_ids(machine.boards[triad].physical.board)
    with vm, pytest.raises(BMPBoardsFailed, match="not ready after 3 power-ons") as failed:
        BMPMachineController(FAST_BMP).power_on_job(machine, JOB, perimeter_for(machine, JOB))
    assert set(failed.value.boards) == set(JOB)
    assert len([on for _, on, _ in bmp.power_log if on]) == 3


def test_boards_are_handed_over_unbooted_by_default(
    machine: MachineDefinition, vm: VirtualMachine
) -> None:
    """As the Java server: power, FPGA check and links, but no SC&MP boot."""
    assert BMPControlOptions().boot_image is None
    options = dataclasses.replace(FAST_BMP, boot_image=None)
    BMPMachineController(options).power_on_job(machine, JOB, perimeter_for(machine, JOB))
    assert {t for t, b in vm.boards.items() if b.powered} == set(JOB)
    assert not any(b.booted for b in vm.boards.values())
    for triad, direction in perimeter_for(machine, JOB):
        assert not vm.boards[triad].links_enabled[direction]
