"""A virtual spin24 on free loopback addresses and a service driving it over real UDP.

``machine`` and ``vservice`` are pytest fixtures: a test module (or conftest) takes
them by assignment (``machine = virtual_machines.machine``); ``vservice`` needs the
``make_service`` fixture of tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyspalloc.geometry import MachineDefinition, builtin_machine
from pyspalloc.server.bmp_control import BMPControlOptions, BMPMachineController
from pyspalloc.transceiver.boot import boot_image
from pyspalloc.virtual import VirtualMachine
from tests.support.addresses import free_virtual_base

#: BMP control with short retries; boots jobs' boards with our synthetic image (which
#: boots virtual boards only)
FAST_BMP = BMPControlOptions(
    retry_delay=0.05, power_timeout=1.0, boot_timeout=10.0, boot_image=boot_image()
)


@pytest.fixture
def machine() -> Iterator[tuple[MachineDefinition, VirtualMachine]]:
    """A virtual spin24 machine (unpowered) on a free 127.1.N.0 base."""
    definition = builtin_machine("spin24", free_virtual_base())
    with VirtualMachine(definition) as vm:
        yield definition, vm


@pytest.fixture
def vservice(
    make_service: Callable[..., Any], machine: tuple[MachineDefinition, VirtualMachine]
) -> Any:
    """The service driving ``machine`` with the real BMP controller."""
    definition, _ = machine
    base = next(iter(definition.bmp_ips.values()))
    return make_service(
        virtual_address_base=base, instant_controller=BMPMachineController(FAST_BMP)
    )
