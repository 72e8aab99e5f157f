"""The whole service path against a virtual machine: BMP power, boot, and the
server-side memory and router operations."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pyspalloc.geometry import builtin_machine
from pyspalloc.virtual import VirtualMachine
from tests.server.service_support import login, state, wait_for


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_memory_and_router_through_virtual_boards(make_service: Any) -> None:
    from pyspalloc.server.hardware import make_controller
    from pyspalloc.transceiver.boot import boot_image

    base = f"127.{random.randrange(20, 90)}.0.0"
    with VirtualMachine(builtin_machine("spin5", base)):
        service = make_service(
            machines=["virtual:spin5"],
            virtual_address_base=base,
            controller="bmp",
            # the service boots the job's board (with the synthetic image: virtual boards only)
            instant_controller=make_controller("bmp", boot_image()),
        )
        _memory_and_router(service, base)


def _memory_and_router(service: Any, base: str) -> None:
    alice = login(service, "alice")
    url = alice.create(**{"machine-name": "spin5"}).headers["location"]
    wait_for(lambda: state(alice, url) == "READY", timeout=60)
    connections = alice.get(url + "/machine").json()["connections"]
    assert connections == [[[0, 0], base.rsplit(".", 2)[0] + ".0.1"]]
    payload = bytes(range(256)) * 4
    written = alice.post(
        url + "/memory?x=1&y=1&address=1610612736",
        data=payload,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert written.status_code == 202, written.text
    read = alice.get(url + f"/memory?x=1&y=1&address=1610612736&size={len(payload)}")
    assert read.status_code == 200
    assert read.headers["content-type"] == "application/octet-stream"
    assert read.content == payload
    assert alice.delete(url + "/router?0=1").status_code == 202
    bad = alice.delete(url + "/router?x=1")
    assert bad.status_code == 400
    assert alice.delete(url + "?reason=done").status_code == 204
