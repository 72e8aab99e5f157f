"""Our client finds an installed spinnman's real ``scamp.boot`` and boots with it.

spinnman 1!7.4.1 is installed in its interop venv; a directory on ``sys.path`` holding
only a link to that ``spinnman`` package makes it "installed" for this process (and
nothing else of the venv), so the real discovery path (``importlib.util.find_spec``, no
import of spinnman) is what picks the image. The board is a virtual one handed over
unbooted by the service, booted through the proxy.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.client.client import SpallocClient
from pyspalloc.transceiver.boot_image import BOOT_IMAGE_ENV, find_boot_image
from pyspalloc.wire.boot import SV_IN_IMAGE
from tests.client.proxy_support import (
    PASSWORD,
    USER,
    ready_job,
    start_test_service,
    virtual_board,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]


@pytest.fixture
def installed_spinnman(
    interop_python: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """spinnman 1!7.4.1's site-packages on ``sys.path``; returns its ``scamp.boot``."""
    python = interop_python("spinnman==1!7.4.1", "packaging")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    site = tmp_path / "site"
    site.mkdir()
    (site / "spinnman").symlink_to(Path(purelib, "spinnman"), target_is_directory=True)
    monkeypatch.delenv(BOOT_IMAGE_ENV, raising=False)
    monkeypatch.syspath_prepend(str(site))
    image = site / "spinnman" / "messages" / "spinnaker_boot" / "boot_data" / "scamp.boot"
    assert image.is_file()
    return image


@pytest.fixture
def unbooted_service(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "service").mkdir()
    service = start_test_service(tmp_path / "service", boot=False)
    try:
        yield service
    finally:
        service.stop()


def test_client_boots_with_spinnmans_scamp_boot(
    installed_spinnman: Path, unbooted_service: Any
) -> None:
    found = find_boot_image()
    assert found.source == str(installed_spinnman)
    assert "spinnman" not in sys.modules  # found, not imported
    real = installed_spinnman.read_bytes()
    with SpallocClient(unbooted_service.url, USER, PASSWORD) as client:
        job = ready_job(client)
        try:
            board = virtual_board(unbooted_service, job.get_connections()[0, 0])
            assert not board.booted
            with job.create_transceiver() as txrx:
                assert board.booted
                sent = txrx.last_boot_image
                assert sent is not None and sent.source == str(installed_spinnman)
                assert len(sent.data) == len(real)
                assert sent.data[: SV_IN_IMAGE.start] == real[: SV_IN_IMAGE.start]
                assert sent.data[SV_IN_IMAGE.stop :] == real[SV_IN_IMAGE.stop :]
                assert txrx.get_machine_details().n_chips == 48
        finally:
            job.destroy("test over")
