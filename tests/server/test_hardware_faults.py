"""What real hardware needs that virtual boards forgave: the service against virtual BMPs
over UDP with injected faults (BMP silent, FPGA IDs wrong, power failure, old firmware),
the off-wait-time rest between power-off and power-on, and unbooted hand-over."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.geometry import MachineDefinition, Triad, builtin_machine
from pyspalloc.server.allocator import perimeter_for
from pyspalloc.server.bmp_control import BMPBoardsFailed, BMPControlOptions, BMPMachineController
from pyspalloc.server.config import ServiceConfig
from pyspalloc.virtual import VirtualMachine
from pyspalloc.virtual.bmp import VirtualBMP
from pyspalloc.wire.boot import MAX_BOOT_IMAGE
from tests.server.service_support import login, state, wait_for
from tests.support.addresses import free_virtual_base

#: no boot (the default), short timeouts so that failures are quick
OPTIONS = BMPControlOptions(retry_delay=0.05, power_timeout=0.5, register_timeout=0.3)
JOB = [Triad(0, 0, 0), Triad(0, 0, 1), Triad(0, 0, 2)]


@pytest.fixture
def machine() -> Iterator[tuple[MachineDefinition, VirtualMachine]]:
    """A virtual spin24 (one frame, one BMP), unpowered, on a free 127.1.N.0 base."""
    definition = builtin_machine("spin24", free_virtual_base())
    with VirtualMachine(definition) as vm:
        yield definition, vm


def the_bmp(vm: VirtualMachine) -> VirtualBMP:
    (bmp,) = vm.bmps.values()
    return bmp


def number(definition: MachineDefinition, triad: Triad) -> int:
    return int(definition.boards[triad].physical.board)


def hw_service(
    make_service: Callable[..., Any], definition: MachineDefinition, **overrides: Any
) -> Any:
    base = next(iter(definition.bmp_ips.values()))
    return make_service(
        virtual_address_base=base, instant_controller=BMPMachineController(OPTIONS), **overrides
    )


def first_choice(service: Any) -> Any:
    """The board a one-board job gets first on a fresh machine (longest rested: all
    equal, so the lowest board id)."""
    store = service.app.state.ctx.store
    machine = store.machine("spin24")
    return min(store.boards(machine.id), key=lambda b: b.id)


def board_of(service: Any, client: Any, url: str) -> Any:
    (ip,) = [c[1] for c in client.get(url + "/machine").json()["connections"]]
    store = service.app.state.ctx.store
    machine = store.machine("spin24")
    return next(b for b in store.boards(machine.id) if b.address == ip)


# ---- the controller alone ------------------------------------------------------------
def test_silent_bmp_fails_the_job_boards_in_bounded_time(
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    definition, vm = machine
    the_bmp(vm).set_silent()
    started = time.monotonic()
    with pytest.raises(BMPBoardsFailed, match="failed after 3 attempts") as failed:
        BMPMachineController(OPTIONS).power_on_job(definition, JOB, perimeter_for(definition, JOB))
    assert time.monotonic() - started < 15  # 3 x 0.5 s, with room for a loaded machine
    assert set(failed.value.boards) == set(JOB)
    assert len(the_bmp(vm).power_log) == 3
    assert not any(b.powered for b in vm.boards.values())


def test_power_failure_names_only_the_failing_board(
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    definition, vm = machine
    the_bmp(vm).fail_power(number(definition, JOB[1]))
    with pytest.raises(BMPBoardsFailed, match=r"refused for boards \[1\]") as failed:
        BMPMachineController(OPTIONS).power_on_job(definition, JOB, perimeter_for(definition, JOB))
    assert failed.value.boards == (JOB[1],)
    assert {t for t, b in vm.boards.items() if b.powered} == {JOB[0], JOB[2]}


def test_wrong_fpga_ids_name_only_that_board(
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    definition, vm = machine
    bmp = the_bmp(vm)
    bmp.fail_fpga_ids(number(definition, JOB[2]))
    with pytest.raises(BMPBoardsFailed, match=r"FPGAs of boards \[2\].*3 power-ons") as failed:
        BMPMachineController(OPTIONS).power_on_job(definition, JOB, perimeter_for(definition, JOB))
    assert failed.value.boards == (JOB[2],)
    # the job's power-on, then two more for the bad board alone (fpga-attempts = 3)
    assert [mask for _, on, mask in bmp.power_log if on] == [0b111, 0b100, 0b100]


def test_old_bmp_firmware_skips_the_fpga_steps(
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    """BMP version read first: firmware before 2.0 cannot manage FPGAs (as Java)."""
    definition, vm = machine
    bmp = the_bmp(vm)
    bmp.set_version(1, 3)
    for triad in JOB:  # would fail the job if the FPGAs were looked at
        bmp.fail_fpga_ids(number(definition, triad))
    BMPMachineController(OPTIONS).power_on_job(definition, JOB, perimeter_for(definition, JOB))
    assert {t for t, b in vm.boards.items() if b.powered} == set(JOB)
    assert all(all(vm.boards[t].links_enabled) for t in JOB)  # no link was stopped
    assert len(bmp.power_log) == 1
    bmp.clear_faults()
    BMPMachineController(OPTIONS).power_on_job(definition, JOB, perimeter_for(definition, JOB))
    for triad, direction in perimeter_for(definition, JOB):
        assert not vm.boards[triad].links_enabled[direction]


# ---- the service: out of service, re-queued, rested ------------------------------------
def _admin_boards_page(service: Any) -> str:
    root = login(service, "root")
    page = root.get(service.url + "system/admin/boards?machine=spin24")
    assert page.status_code == 200
    return str(page.text)


@pytest.mark.parametrize("fault", ["fpga", "power"])
def test_failed_board_is_taken_out_and_the_job_requeued_elsewhere(
    make_service: Callable[..., Any],
    machine: tuple[MachineDefinition, VirtualMachine],
    fault: str,
) -> None:
    definition, vm = machine
    service = hw_service(make_service, definition)
    bad = first_choice(service)
    if fault == "fpga":
        the_bmp(vm).fail_fpga_ids(bad.board)
        reason = "not ready after 3 power-ons"
    else:
        the_bmp(vm).fail_power(bad.board)
        reason = "power on of boards"
    alice = login(service, "alice")
    url = alice.create(**{"num-boards": 1}).headers["location"]
    wait_for(lambda: state(alice, url) == "READY", timeout=30)
    got = board_of(service, alice, url)
    assert got.id != bad.id
    assert vm.boards[Triad(got.x, got.y, got.z)].powered
    store = service.app.state.ctx.store
    now = store.board(bad.id)
    assert now is not None and not now.functioning and now.job_id is None
    assert reason in store.out_of_service_reasons(now.machine_id)[bad.id]
    dead = alice.get("machines").json()["machines"][0]["dead-boards"]
    assert [(d["x"], d["y"], d["z"]) for d in dead] == [bad.triad]
    assert reason in _admin_boards_page(service)
    assert alice.delete(url + "?reason=done").status_code == 204


def test_silent_bmp_takes_the_boards_out_until_it_answers(
    make_service: Callable[..., Any],
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    definition, vm = machine
    service = hw_service(make_service, definition)
    bad = first_choice(service)
    the_bmp(vm).set_silent()
    alice = login(service, "alice")
    url = alice.create(**{"num-boards": 1}).headers["location"]
    store = service.app.state.ctx.store
    wait_for(lambda: not store.board(bad.id).functioning, timeout=30)
    assert "failed after 3 attempts" in store.out_of_service_reasons(bad.machine_id)[bad.id]
    wait_for(lambda: state(alice, url) == "QUEUED", timeout=30)
    the_bmp(vm).set_silent(False)  # the BMP answers again: the job lands elsewhere
    wait_for(lambda: state(alice, url) == "READY", timeout=60)
    assert board_of(service, alice, url).id != bad.id


def test_boards_rest_off_wait_time_before_power_on(
    make_service: Callable[..., Any],
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    definition, vm = machine
    rest = 2.0
    service = hw_service(make_service, definition, off_wait_time=rest)
    bmp = the_bmp(vm)
    alice = login(service, "alice")
    board = {"board": {"x": 1, "y": 1, "z": 0}}
    url = alice.create(**board).headers["location"]
    wait_for(lambda: state(alice, url) == "READY", timeout=30)
    assert alice.delete(url + "?reason=again").status_code == 204
    mask = 1 << number(definition, Triad(1, 1, 0))
    wait_for(lambda: any(not on and m == mask for _, on, m in bmp.power_log))
    url = alice.create(**board).headers["location"]
    wait_for(lambda: state(alice, url) == "READY", timeout=30)
    log = [(t, on) for t, on, m in bmp.power_log if m == mask]
    assert [on for _, on in log] == [True, False, True]
    assert log[2][0] - log[1][0] >= rest - 0.1  # rested (power_off_time is taken after)
    # a user power-off rests the boards too
    assert alice.post(url + "/machine/power", json={"power": "OFF"}).status_code == 202
    wait_for(lambda: state(alice, url) == "READY", timeout=30)
    assert alice.post(url + "/machine/power", json={"power": "ON"}).status_code == 202
    wait_for(lambda: state(alice, url) == "READY", timeout=30)
    log = [(t, on) for t, on, m in bmp.power_log if m == mask]
    assert [on for _, on in log] == [True, False, True, False, True]
    assert log[4][0] - log[3][0] >= rest - 0.1


def test_rest_on_unbooted_board_is_409_not_a_timeout(
    make_service: Callable[..., Any],
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    definition, vm = machine
    service = hw_service(make_service, definition)
    alice = login(service, "alice")
    url = alice.create(**{"num-boards": 1}).headers["location"]
    wait_for(lambda: state(alice, url) == "READY", timeout=30)
    got = board_of(service, alice, url)
    board = vm.boards[Triad(got.x, got.y, got.z)]
    assert board.powered and not board.booted  # handed over unbooted, as Java does
    started = time.monotonic()
    read = alice.get(url + "/memory?x=0&y=0&address=1610612736&size=16")
    assert read.status_code == 409, read.text
    assert read.text.startswith("board not booted:") and "boot connection" in read.text
    router = alice.delete(url + "/router")
    assert router.status_code == 409, router.text
    assert time.monotonic() - started < 10  # two short probes, not every retry
    board.boot_here()
    wait_for(lambda: board.booted)
    read = alice.get(url + "/memory?x=0&y=0&address=1610612736&size=16")
    assert read.status_code == 200 and len(read.content) == 16


# ---- settings ------------------------------------------------------------------------
def test_off_wait_time_defaults_and_boot_image(tmp_path: Path) -> None:
    from pyspalloc.server.app import off_wait_times

    config = ServiceConfig(machines=["virtual:spin24", "spin5"], controller="bmp")
    assert off_wait_times(config) == {"spin24": 0.0, "spin5": 30.0}  # Java's 30 s for real
    config.off_wait_time = 4.5
    assert off_wait_times(config) == {"spin24": 4.5, "spin5": 4.5}
    assert off_wait_times(ServiceConfig(machines=["spin5"], controller="instant")) == {"spin5": 0.0}
    assert config.read_boot_image() is None
    image = tmp_path / "scamp.boot"
    image.write_bytes(b"\1\2\3\4" * 10)
    config.boot_image = image
    assert config.read_boot_image() == b"\1\2\3\4" * 10
    image.write_bytes(b"")
    with pytest.raises(ValueError, match="0 bytes"):
        config.read_boot_image()
    image.write_bytes(bytes(MAX_BOOT_IMAGE + 4))
    with pytest.raises(ValueError, match=r"must be 1\.\."):
        config.read_boot_image()
    config.boot_image = tmp_path / "missing.boot"
    with pytest.raises(ValueError, match=r"missing\.boot"):
        config.read_boot_image()


def test_serve_offers_boot_image_and_off_wait_time() -> None:
    from click.testing import CliRunner

    from pyspalloc.cli.serve import serve

    text = CliRunner().invoke(serve, ["--help"]).output
    assert "--boot-image" in text and "--off-wait-time" in text
    bad = CliRunner().invoke(serve, ["--off-wait-time", "-1"])
    assert bad.exit_code == 2 and "off-wait-time" in bad.output


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_with_boot_image_hands_jobs_over_booted(
    tmp_path: Path, db_url: str, machine: tuple[MachineDefinition, VirtualMachine]
) -> None:
    """``ServiceConfig.boot_image`` (``serve --boot-image``) reaches the BMP controller."""
    from pyspalloc.server.runner import start_service
    from pyspalloc.transceiver.boot import boot_image
    from tests.server.service_support import SERVICE_TIMEOUT
    from tests.support.http_client import Http

    definition, vm = machine
    image = tmp_path / "virtual-scamp.boot"
    image.write_bytes(boot_image())
    config = ServiceConfig(
        host="127.0.0.1", port=0, data_dir=tmp_path / "data", database=db_url,
        machines=["spin24"],
        virtual_address_base=next(iter(definition.bmp_ips.values())),
        controller="bmp", boot_image=image, allocator_period=0.5,
    )  # fmt: skip
    with start_service(config) as service:
        admin = Http(service.url, timeout=SERVICE_TIMEOUT)
        assert admin.login("admin", service.admin_password).status_code == 302
        url = admin.create(**{"num-boards": 1}).headers["location"]
        wait_for(lambda: state(admin, url) == "READY", timeout=30)
        got = board_of(service, admin, url)
        assert vm.boards[Triad(got.x, got.y, got.z)].booted
        read = admin.get(url + "/memory?x=0&y=0&address=1610612736&size=8")
        assert read.status_code == 200 and len(read.content) == 8
