"""Seams between the service core and the hardware side.

:class:`MachineController` is what :mod:`pyspalloc.server.lifecycle` calls to power
boards; :class:`JobOperations` is what the REST memory/router endpoints call. The real
implementations are :class:`~pyspalloc.server.bmp_control.BMPMachineController` and
:class:`~pyspalloc.server.machine_ops.ServerJobOperations`;
:class:`InstantMachineController` changes power at once and does no I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pyspalloc.exceptions import SpinnmanException

if TYPE_CHECKING:
    from pyspalloc.geometry import Direction, MachineDefinition, Triad

log = logging.getLogger(__name__)

#: A job's boards: job-relative Ethernet chip (x, y) -> board IPv4 address (the one
#: definition; the proxy, the job views and the machine operations import it).
JobBoards = dict[tuple[int, int], str]


class BoardsFailed(Exception):
    """Boards failed for good (BMP silent or refusing, FPGAs never right): the lifecycle
    takes ``boards`` out of service with ``reason`` recorded, and re-queues the job."""

    def __init__(self, reason: str, boards: Sequence[Triad]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.boards = tuple(boards)


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
        BoardsFailed
            Boards that failed for good (they are taken out of service).
        Exception
            On any other failure (after the implementation's own bounded retries).
        """

    def power_off(self, machine: MachineDefinition, boards: list[Triad]) -> None:
        """Power off ``boards``."""


class BoardNotBooted(SpinnmanException):
    """A job's board does not run SC&MP yet (the REST layer answers 409)."""


@runtime_checkable
class JobOperations(Protocol):
    """Server-side SCP operations on an allocated job's boards (web-api.md §4.12).

    ``boards`` maps job-relative Ethernet chips to board IPs; the root board is at
    ``(0, 0)``; ``x``, ``y`` are job-relative chip coordinates. A board that is not
    booted raises :class:`BoardNotBooted` at once. ``checkpoint`` is called before every
    burst of packets and raises when the job has ended: the operation must then stop
    sending.
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
