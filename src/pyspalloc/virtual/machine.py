"""A virtual SpiNNaker machine: its boards and BMPs on one asyncio loop in a daemon thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import resource
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from pyspalloc.geometry import Chip, Direction, MachineDefinition, MachineDefinitionError, Triad
from pyspalloc.geometry.chip_description import ChipDescription, load_chip_description
from pyspalloc.virtual.bmp import VirtualBMP
from pyspalloc.virtual.board import VirtualBoard
from pyspalloc.virtual.memory import DEFAULT_BUDGET, MemoryBudget
from pyspalloc.virtual.sdp_buffers import DEFAULT_SDP_BUFFERS, DEFAULT_SERVICE_S
from pyspalloc.virtual.topology import BootedMachine

__all__ = ["VirtualMachine"]

T = TypeVar("T")
#: Seconds a call into the event loop may take before it is reported as stuck.
CALL_TIMEOUT = 60.0


def raise_file_limit() -> None:
    """Raise the soft limit on open files to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


class VirtualMachine:
    """Virtual SpiNN-5 boards and BMPs for a machine definition, on loopback addresses.

    Parameters
    ----------
    definition:
        The machine; every functioning board with an IP gets a :class:`VirtualBoard`,
        every frame with a BMP address a :class:`VirtualBMP`.
    booted:
        Start powered and booted from board (0, 0, 0) (the whole machine as one).
    powered:
        Start with every board powered (but not booted).
    latency_ms, loss:
        Initial fault injection for every board (see :meth:`VirtualBoard.set_fault`).
    netinit:
        Seconds after a boot during which CMD_VER answers with chip (255, 255) and
        other requests get no answer (SC&MP still starting).
    power_on_delay:
        Seconds a BMP takes to answer a power-on command.
    memory_budget:
        Most bytes of chip memory (written pages and fill runs) the whole machine holds;
        a request needing more is answered ``RC_BUF``. Unwritten memory costs nothing.
    chips:
        A recorded machine for the boards to reproduce (missing chips, core counts,
        dead links); by default the one the definition's ``chips`` names, if any.
    sdp_buffers:
        SDP messages each board's SC&MP holds at once (as a real board's, about 8);
        more arriving faster than it handles them are dropped. 0: no limit.
    sdp_service_s:
        Seconds SC&MP spends per message in that model.

    Raises
    ------
    MachineDefinitionError
        If the description cannot be read, or names a board the definition lacks.
    """

    def __init__(
        self,
        definition: MachineDefinition,
        *,
        booted: bool = False,
        powered: bool = False,
        latency_ms: float = 0.0,
        loss: float = 0.0,
        netinit: float = 0.0,
        power_on_delay: float = 0.0,
        memory_budget: int = DEFAULT_BUDGET,
        chips: ChipDescription | None = None,
        sdp_buffers: int = DEFAULT_SDP_BUFFERS,
        sdp_service_s: float = DEFAULT_SERVICE_S,
    ) -> None:
        self.definition = definition
        #: what the chips of every board hold between them, charged as they store it
        self.memory_budget = MemoryBudget(memory_budget)
        self.sdp_buffers = sdp_buffers
        self.sdp_service_s = sdp_service_s
        self.netinit = netinit
        self.power_on_delay = power_on_delay
        self.boards: dict[Triad, VirtualBoard] = {}
        for triad, board_def in definition.boards.items():
            if board_def.functioning and board_def.ip:
                board = VirtualBoard(self, board_def)
                board.set_fault(latency_ms, loss)
                self.boards[triad] = board
        self._by_ip = {b.ip: b for b in self.boards.values()}
        if chips is None and definition.chips:
            chips = load_chip_description(definition.chips)
        self.chip_description = chips
        self._recorded_root: Triad | None = None
        if chips is not None:
            self._apply_description(chips)
        self.bmps: dict[tuple[int, int], VirtualBMP] = {}
        for key, frame in definition.frames.items():
            if frame.bmp_ip:
                members = {
                    b.physical.board: self.boards[b.triad]
                    for b in frame.boards
                    if b.triad in self.boards
                }
                self.bmps[key] = VirtualBMP(self, key[0], key[1], frame.bmp_ip, members)
        self._initially_booted = booted
        self._initially_powered = powered or booted
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    def _apply_description(self, chips: ChipDescription) -> None:
        for (ex, ey), layout in chips.boards().items():
            triad, local = self.definition.locate_chip(Chip(ex, ey))
            board = self.boards.get(triad)
            if board is None or local != (0, 0):
                raise MachineDefinitionError(
                    "chips",
                    f"the recorded board with Ethernet chip ({ex}, {ey}) is not a live board "
                    f"of machine {self.definition.name!r}",
                )
            board.layout = layout
            if chips.root == (0, 0) == (ex, ey):
                self._recorded_root = triad

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> VirtualMachine:
        """Bind every socket and serve in a daemon thread; return once all are bound."""
        if self._thread is not None:
            return self
        raise_file_limit()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"virtual-{self.definition.name}", daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout=CALL_TIMEOUT * 5)
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            for board in self.boards.values():
                board.open(self.loop)
                board.powered = self._initially_powered
            for bmp in self.bmps.values():
                bmp.open(self.loop)
            if self._initially_booted and self.boards:
                root = self.boards.get(Triad(0, 0, 0)) or next(iter(self.boards.values()))
                self.boot_from(root)
        except BaseException as error:
            self._close_all()
            ready.set_exception(error)
            return
        ready.set_result(None)
        try:
            self.loop.run_forever()
        finally:
            self._close_all()

    def _close_all(self) -> None:
        for board in self.boards.values():
            board.close()
        for bmp in self.bmps.values():
            bmp.close()

    def stop(self) -> None:
        """Close every socket and stop the event loop thread."""
        thread = self._thread
        if thread is None:
            return
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        thread.join(timeout=CALL_TIMEOUT)
        self._thread = None
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()

    def __enter__(self) -> VirtualMachine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in the event loop thread and return its result."""
        if self._thread is None or threading.current_thread() is self._thread:
            return function(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function(*args))
            except BaseException as error:
                future.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout=CALL_TIMEOUT)

    # -- lookups --------------------------------------------------------------------

    def board_by_ip(self, ip: str) -> VirtualBoard | None:
        """The board whose Ethernet chip has address ``ip``, or None."""
        return self._by_ip.get(ip)

    # -- booting --------------------------------------------------------------------

    def usable_link(self, board: VirtualBoard, direction: Direction) -> VirtualBoard | None:
        """The powered board across a working, enabled-at-both-ends link, or None."""
        definition = self.definition
        if not board.links_enabled[direction]:
            return None
        other = self.boards.get(definition.neighbour(board.triad, direction))
        if other is None or not other.powered or other is board:
            return None
        if not other.links_enabled[direction.opposite]:
            return None
        if not definition.live_link(board.triad, direction):
            return None
        return other

    def boot_from(self, root: VirtualBoard) -> BootedMachine | None:
        """Boot ``root`` and every powered, unbooted board reachable through usable links."""
        if not root.powered or root.booted:
            return None
        members = {root.triad: root}
        queue = deque([root])
        while queue:
            board = queue.popleft()
            for direction in Direction:
                other = self.usable_link(board, direction)
                if other is not None and not other.booted and other.triad not in members:
                    members[other.triad] = other
                    queue.append(other)
        ready_at = self.loop.time() + self.netinit if self.netinit > 0 else 0.0
        recorded = self.chip_description
        size = None
        if recorded is not None and root.triad == self._recorded_root:
            size = (recorded.width, recorded.height)
        machine = BootedMachine(
            root,
            members.values(),
            self.usable_link,
            (self.definition.width, self.definition.height),
            ready_at,
            size,
        )
        for board in members.values():
            board.machine = machine
        return machine
