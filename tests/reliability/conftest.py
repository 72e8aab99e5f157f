"""Fixtures of the reliability tests: a service driving a virtual machine over UDP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.geometry import MachineDefinition, builtin_machine
from pyspalloc.server.bmp_control import BMPMachineController
from pyspalloc.virtual import VirtualMachine
from tests.reliability.support import FAST_BMP
from tests.support.addresses import free_virtual_base


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Reliability tests run on SQLite only (the store tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"


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
