"""The client boots a silent board through the proxy, with a real SC&MP image if it has one.

The service here powers boards and hands them over unbooted (as the Java server does);
``job.create_transceiver()`` finds the root board silent and floods it with a boot image
through the proxy's boot connection, as spinnman does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.client.client import SpallocClient
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.transceiver import SpallocTransceiver
from pyspalloc.exceptions import SpinnmanInvalidParameterException, SpinnmanTimeoutException
from pyspalloc.geometry import builtin_machine
from pyspalloc.transceiver import create_transceiver
from pyspalloc.transceiver.boot import boot_image
from pyspalloc.transceiver.boot_image import (
    BOOT_IMAGE_ENV,
    find_boot_image,
    spinnman_boot_image,
    with_boot_values,
)
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.boot import SV_IN_IMAGE
from tests.client.proxy_support import (
    PASSWORD,
    USER,
    ready_job,
    start_test_service,
    virtual_board,
)
from tests.support.addresses import free_virtual_base

#: the size of SC&MP's own image
IMAGE_SIZE = 29868


@pytest.fixture(autouse=True)
def no_image_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOT_IMAGE_ENV, raising=False)


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    """A stand-in for ``scamp.boot``: random words (virtual boards accept any image)."""
    path = tmp_path / "scamp.boot"
    path.write_bytes(os.urandom(IMAGE_SIZE))
    return path


def fake_spinnman(root: Path, image: bytes, init: str) -> Path:
    """A ``spinnman`` package under ``root`` holding ``image`` where spinnman keeps it."""
    boot_data = root / "spinnman" / "messages" / "spinnaker_boot" / "boot_data"
    boot_data.mkdir(parents=True)
    (root / "spinnman" / "__init__.py").write_text(init)
    (boot_data / "scamp.boot").write_bytes(image)
    return boot_data / "scamp.boot"


# ----------------------------------------------------------------------------- the image


def test_boot_values_replace_only_bytes_384_to_511(image_file: Path) -> None:
    raw = image_file.read_bytes()
    prepared = with_boot_values(raw, now=1234)
    assert len(prepared) == len(raw)
    assert prepared[: SV_IN_IMAGE.start] == raw[: SV_IN_IMAGE.start]
    assert prepared[SV_IN_IMAGE.stop :] == raw[SV_IN_IMAGE.stop :]
    assert prepared[SV_IN_IMAGE] == boot_image(now=1234)[SV_IN_IMAGE]
    for bad in (b"", bytes(508), bytes(1026), bytes(256 * 1024 + 4)):
        with pytest.raises(SpinnmanInvalidParameterException):
            with_boot_values(bad)


def test_image_is_chosen_explicit_then_environment_then_spinnman_then_ours(
    tmp_path: Path, image_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert spinnman_boot_image() is None  # not installed in the test environment
    ours = find_boot_image()
    assert ours.synthetic and ours.source == "synthetic"

    # an installed spinnman is found without importing it (its import fails here)
    spinnman_image = os.urandom(IMAGE_SIZE)
    installed = fake_spinnman(tmp_path / "site", spinnman_image, "raise ImportError('no')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert spinnman_boot_image() == installed
    found = find_boot_image()
    assert found.source == str(installed) and not found.synthetic
    assert found.data[SV_IN_IMAGE.stop :] == spinnman_image[SV_IN_IMAGE.stop :]
    assert "spinnman" not in sys.modules

    monkeypatch.setenv(BOOT_IMAGE_ENV, str(image_file))
    assert find_boot_image().source == str(image_file)

    explicit = tmp_path / "other.boot"
    explicit.write_bytes(os.urandom(2048))
    assert find_boot_image(explicit).source == str(explicit)
    assert (
        find_boot_image(str(explicit)).data[SV_IN_IMAGE.stop :]
        == (explicit.read_bytes()[SV_IN_IMAGE.stop :])
    )
    assert find_boot_image(bytes(1024)).source == "bytes"


def test_an_unreadable_image_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SpinnmanInvalidParameterException, match="cannot be read"):
        find_boot_image(tmp_path / "missing.boot")
    monkeypatch.setenv(BOOT_IMAGE_ENV, str(tmp_path / "missing.boot"))
    with pytest.raises(SpinnmanInvalidParameterException, match=BOOT_IMAGE_ENV):
        find_boot_image()


# ----------------------------------------------------------------------------- booting


@pytest.fixture(scope="module")
def unbooted_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A service that powers a job's boards and hands them over without booting them."""
    service = start_test_service(tmp_path_factory.mktemp("client-boot"), boot=False)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def unbooted_job(unbooted_service: Any) -> Iterator[tuple[SpallocJob, Any]]:
    """A READY one-board job whose board is powered but silent, and that virtual board."""
    with SpallocClient(unbooted_service.url, USER, PASSWORD) as client:
        job = ready_job(client)
        try:
            board = virtual_board(unbooted_service, job.get_connections()[0, 0])
            assert board.powered and not board.booted
            yield job, board
        finally:
            job.destroy("test over")


def test_create_transceiver_boots_a_silent_board_through_the_proxy(
    unbooted_job: tuple[SpallocJob, Any], image_file: Path
) -> None:
    job, board = unbooted_job
    with job.create_transceiver(boot_image=image_file) as txrx:
        assert isinstance(txrx, SpallocTransceiver)
        assert board.booted
        assert txrx.last_boot_image is not None
        assert txrx.last_boot_image.source == str(image_file)
        sent = txrx.last_boot_image.data
        assert sent[SV_IN_IMAGE.stop :] == image_file.read_bytes()[SV_IN_IMAGE.stop :]
        assert txrx.get_scamp_version().name == "SC&MP"
        assert txrx.get_machine_details().n_chips == 48


def test_the_image_from_the_environment_is_used(
    unbooted_job: tuple[SpallocJob, Any], image_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, board = unbooted_job
    monkeypatch.setenv(BOOT_IMAGE_ENV, str(image_file))
    with job.create_transceiver() as txrx:
        assert board.booted
        assert txrx.last_boot_image is not None
        assert txrx.last_boot_image.source == str(image_file)


def test_without_an_image_ours_boots_a_virtual_board(
    unbooted_job: tuple[SpallocJob, Any],
) -> None:
    job, board = unbooted_job
    with job.create_transceiver() as txrx:
        assert board.booted
        assert txrx.last_boot_image is not None and txrx.last_boot_image.synthetic


def test_ensure_board_is_ready_false_leaves_the_board_alone(
    unbooted_job: tuple[SpallocJob, Any],
) -> None:
    job, board = unbooted_job
    with job.create_transceiver(ensure_board_is_ready=False) as txrx:
        assert not board.booted and txrx.last_boot_image is None
    with SpallocTransceiver(job, ensure_board_is_ready=False, timeout=0.2, retries=1) as txrx:
        with pytest.raises(SpinnmanTimeoutException):
            txrx.get_scamp_version()
        assert not board.booted
    # a booted board is not booted again: VER answers, so no image is sent
    with job.create_transceiver(ensure_board_is_ready=True) as txrx:
        assert board.booted
    with job.create_transceiver() as again:
        assert again.last_boot_image is None
        assert again.get_scamp_version().name == "SC&MP"


def test_a_board_that_does_not_come_up_says_the_synthetic_image_boots_only_virtual_boards(
    unbooted_job: tuple[SpallocJob, Any], image_file: Path
) -> None:
    job, board = unbooted_job
    board.power_off()  # silent whatever is sent: as a real board flooded with our image
    quick: dict[str, Any] = {"timeout": 0.2, "boot_timeout": 0.5}
    with pytest.raises(SpinnmanTimeoutException) as raised:
        SpallocTransceiver(job, ensure_board_is_ready=True, **quick)
    message = str(raised.value)
    assert "synthetic" in message and "only virtual boards" in message
    assert BOOT_IMAGE_ENV in message and "boot_image=" in message and "spinnman" in message
    with pytest.raises(SpinnmanTimeoutException) as raised:
        SpallocTransceiver(job, ensure_board_is_ready=True, boot_image=image_file, **quick)
    assert str(image_file) in str(raised.value) and "synthetic" not in str(raised.value)


def test_plain_transceiver_says_the_same(image_file: Path) -> None:
    definition = builtin_machine("spin5", free_virtual_base())
    with VirtualMachine(definition, powered=False) as vm:
        ip = next(iter(vm.boards.values())).ip
        with pytest.raises(SpinnmanTimeoutException, match="only virtual boards"):
            create_transceiver(ip, timeout=0.2, boot_timeout=0.5)
        with create_transceiver(ip, timeout=0.2, ensure_ready=False, boot_image=image_file) as t:
            assert t.last_boot_image is None
