"""Fixtures: virtual machines on address bases no other test module uses."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from pyspalloc.geometry import builtin_machine
from pyspalloc.virtual import VirtualMachine

# Each machine gets a fresh 127.X.0.0 base so tests never collide on a port.
_BASES = itertools.cycle(range(100, 140))


@pytest.fixture
def make_vm() -> Iterator[Callable[..., VirtualMachine]]:
    """``make_vm(name, **options)``: a started VirtualMachine, stopped after the test."""
    started: list[VirtualMachine] = []

    def make(name: str = "spin5", **options: object) -> VirtualMachine:
        base = f"127.{next(_BASES)}.0.0"
        vm = VirtualMachine(builtin_machine(name, base), **options)  # type: ignore[arg-type]
        vm.start()
        started.append(vm)
        return vm

    yield make
    for vm in started:
        vm.stop()
