"""Fixtures: virtual machines on loopback address bases that are free right now."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pyspalloc.virtual import VirtualMachine
from tests.virtual.helpers import start_vm


@pytest.fixture
def make_vm() -> Iterator[Callable[..., VirtualMachine]]:
    """``make_vm(name, **options)``: a started VirtualMachine, stopped after the test."""
    started: list[VirtualMachine] = []

    def make(name: str = "spin5", **options: object) -> VirtualMachine:
        vm = start_vm(name, **options)
        started.append(vm)
        return vm

    yield make
    for vm in started:
        vm.stop()
