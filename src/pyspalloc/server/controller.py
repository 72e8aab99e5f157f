"""Seams between the service core and the hardware side.

:class:`MachineController` is what :mod:`pyspalloc.server.lifecycle` calls to power
boards; :class:`JobOperations` is what the REST memory/router endpoints call. The real
implementations live in :mod:`pyspalloc.server.bmp_control`
(``BMPMachineController()`` and ``ServerJobOperations()``, both built without
arguments); :class:`InstantMachineController` changes power at once and does no I/O.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pyspalloc.geometry import Direction, MachineDefinition, Triad

log = logging.getLogger(__name__)

#: job-relative Ethernet chip (x, y) -> board IPv4 address
JobBoards = dict[tuple[int, int], str]


@runtime_checkable
class MachineController(Protocol):
    """Powers boards and sets their links; every call blocks until done or raises."""

    def power_on_job(
        self,
        machine: MachineDefinition,
        boards: list[Triad],
        perimeter: list[tuple[Triad, Direction]],
    ) -> None:
        """Power on ``boards``, enable their internal links, disable ``perimeter`` links.

        Raises
        ------
        Exception
            On any failure (after the implementation's own bounded retries).
        """

    def power_off(self, machine: MachineDefinition, boards: list[Triad]) -> None:
        """Power off ``boards``."""


@runtime_checkable
class JobOperations(Protocol):
    """Server-side SCP operations on an allocated job's boards (web-api.md §4.12).

    ``boards`` maps job-relative Ethernet chips to board IPs; the root board is at
    ``(0, 0)``; ``x``, ``y`` are job-relative chip coordinates. ``checkpoint`` is called
    before every burst of packets and raises when the job has ended: the operation must
    then stop sending.
    """

    def read_memory(
        self,
        boards: JobBoards,
        x: int,
        y: int,
        address: int,
        size: int,
        checkpoint: Callable[[], None] = ...,
    ) -> bytes:
        """Read ``size`` bytes at ``address`` of chip (x, y)."""

    def write_memory(
        self,
        boards: JobBoards,
        x: int,
        y: int,
        address: int,
        data: bytes,
        checkpoint: Callable[[], None] = ...,
    ) -> None:
        """Write ``data`` at ``address`` of chip (x, y)."""

    def reset_router(
        self, boards: JobBoards, filters: dict[int, int], checkpoint: Callable[[], None] = ...
    ) -> None:
        """Clear routing tables and diagnostic counters, and install diagnostic filters."""


class InstantMachineController:
    """A controller whose power changes complete at once, without any I/O.

    It remembers which boards are on, so tests can check the sequencing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.powered: set[tuple[str, tuple[int, int, int]]] = set()
        self.calls: list[tuple[str, str, int]] = []
        #: when set, the next power-on raises this (for failure tests)
        self.fail_next: Exception | None = None

    def power_on_job(
        self,
        machine: MachineDefinition,
        boards: list[Triad],
        perimeter: list[tuple[Triad, Direction]],
    ) -> None:
        """Mark ``boards`` as on."""
        with self._lock:
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            self.calls.append(("on", machine.name, len(boards)))
            self.powered.update((machine.name, tuple(b)) for b in boards)  # type: ignore[misc]

    def power_off(self, machine: MachineDefinition, boards: list[Triad]) -> None:
        """Mark ``boards`` as off."""
        with self._lock:
            self.calls.append(("off", machine.name, len(boards)))
            self.powered.difference_update((machine.name, tuple(b)) for b in boards)


def _load(attribute: str) -> Any:
    module = importlib.import_module("pyspalloc.server.bmp_control")
    return getattr(module, attribute)()


def make_controller(kind: str) -> MachineController:
    """Build the controller named by the configuration.

    Parameters
    ----------
    kind:
        ``"instant"``, ``"bmp"`` or ``"auto"`` (BMP control when available).
    """
    if kind == "instant":
        return InstantMachineController()
    try:
        controller: MachineController = _load("BMPMachineController")
        return controller
    except (ImportError, AttributeError):
        if kind == "bmp":
            raise
        log.warning("pyspalloc.server.bmp_control not available: power changes are simulated")
        return InstantMachineController()


def make_job_operations() -> JobOperations | None:
    """Return the server-side SCP operations, or None if not installed."""
    try:
        operations: JobOperations = _load("ServerJobOperations")
        return operations
    except (ImportError, AttributeError):
        return None
