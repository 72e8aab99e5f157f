"""Fixtures: virtual machines on loopback address bases that are free right now."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from pyspalloc.geometry import builtin_machine
from pyspalloc.virtual import VirtualMachine


def start_vm(name: str = "spin5", **options: object) -> VirtualMachine:
    """Start a built-in machine on a random free ``127.X.0.0`` base (X in 160-250)."""
    bases = random.sample(range(160, 251), 40)
    error: OSError | None = None
    for second in bases:
        vm = VirtualMachine(builtin_machine(name, f"127.{second}.0.0"), **options)  # type: ignore[arg-type]
        try:
            return vm.start()
        except OSError as failure:  # address in use by another test run: try another
            error = failure
    assert error is not None
    raise error


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
