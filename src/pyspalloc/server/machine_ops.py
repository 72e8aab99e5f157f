"""Server-side SCP on a job's boards: the REST ``memory`` and ``router`` endpoints.

:class:`ServerJobOperations` implements
:class:`pyspalloc.server.controller.JobOperations` (web-api.md §4.12). Every call builds a
:class:`pyspalloc.transceiver.Transceiver` over plain UDP to the job's boards, does its
work with the transceiver's bounded timeouts and retries, and closes it again; nothing is
kept between calls, so a destroyed job leaves nothing behind. The calls block: the REST
layer runs them in its thread pool.

The service hands boards over unbooted (as the Java server does), so each call first
asks the board it starts on for CMD_VER, briefly: a board that does not answer raises
:class:`~pyspalloc.server.controller.BoardNotBooted` (409) at once, rather than every
request timing out after all its retries.

Large transfers go in chunks of :data:`CHUNK` bytes and a router reset chip by chip; each
call takes a ``checkpoint`` that is called before every chunk (and chip) and raises when the
job has ended, so no operation outlives its job by more than one chunk.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from pyspalloc.exceptions import SpinnmanInvalidParameterException, SpinnmanTimeoutException
from pyspalloc.geometry import BOARD_CHIP_SET, Chip
from pyspalloc.server.controller import BoardNotBooted, JobBoards
from pyspalloc.transceiver import Transceiver, UDPConnection
from pyspalloc.transceiver.discovery import get_version
from pyspalloc.transceiver.engine import DEFAULT_OPTIONS, EngineOptions
from pyspalloc.wire.consts import SCP_PORT

__all__ = [
    "CHUNK",
    "MAX_TRANSFER",
    "N_FILTERS",
    "Checkpoint",
    "ServerJobOperations",
    "board_of_chip",
]

log = logging.getLogger(__name__)

#: largest single memory read or write (the SDRAM of one chip)
MAX_TRANSFER = 128 * 1024 * 1024
#: bytes moved between two checks that the job is still live (256 SCP packets)
CHUNK = 64 * 1024
#: router diagnostic filters per chip
N_FILTERS = 16
_U32 = 0xFFFFFFFF

#: called before each burst of SCP packets; raises to stop the operation
Checkpoint = Callable[[], None]


def _no_checkpoint() -> None:
    pass


def board_of_chip(boards: JobBoards, x: int, y: int) -> tuple[int, int]:
    """Return the job-relative Ethernet chip of the board holding chip (x, y).

    Raises
    ------
    SpinnmanInvalidParameterException
        If no board of the job holds that chip.
    """
    for ex, ey in boards:
        if Chip(x - ex, y - ey) in BOARD_CHIP_SET:
            return ex, ey
    raise SpinnmanInvalidParameterException(
        "chip", (x, y), "is not on any board of the job's allocation"
    )


def _check_span(address: int, size: int) -> None:
    if not 0 <= address <= _U32:
        raise SpinnmanInvalidParameterException("address", address, "must be in 0..2**32-1")
    if not 0 <= size <= MAX_TRANSFER:
        raise SpinnmanInvalidParameterException("size", size, f"must be in 0..{MAX_TRANSFER}")
    if address + size > _U32 + 1:
        raise SpinnmanInvalidParameterException("size", size, "runs past the end of memory")


class ServerJobOperations:
    """Memory and router operations on a job's boards, over UDP from the service.

    Parameters
    ----------
    options:
        The SCP engine's window, timeout and retries for each board.
    port:
        The boards' SCP port.
    probe_timeout, probe_retries:
        Seconds per CMD_VER probe of the first board, and resends, before it counts
        as not booted.
    """

    def __init__(
        self,
        options: EngineOptions = DEFAULT_OPTIONS,
        *,
        port: int = SCP_PORT,
        probe_timeout: float = 0.5,
        probe_retries: int = 2,
    ) -> None:
        self.options = options
        self.port = port
        self.probe = EngineOptions(1, probe_timeout, probe_retries).once()

    def _check_booted(self, connection: UDPConnection, ip: str) -> None:
        try:
            version = get_version(connection, 255, 255, 0, self.probe)
        except SpinnmanTimeoutException:
            raise BoardNotBooted(
                f"board not booted: {ip} does not answer SC&MP; boot it through the "
                "proxy's boot connection first"
            ) from None
        if (version.x, version.y) == (255, 255):
            raise BoardNotBooted(f"board not booted: {ip} is still booting; try again")

    @contextmanager
    def _transceiver(self, boards: JobBoards, first: tuple[int, int]) -> Iterator[Transceiver]:
        order = [first, *(xy for xy in boards if xy != first)]
        connections = []
        try:
            for xy in order:
                connections.append(UDPConnection(boards[xy], self.port, chip_x=xy[0], chip_y=xy[1]))
            self._check_booted(connections[0], boards[first])
            transceiver = Transceiver(connections, options=self.options)
        except BaseException:
            for connection in connections:
                connection.close()
            raise
        try:
            yield transceiver
        finally:
            transceiver.close()

    def read_memory(
        self,
        boards: JobBoards,
        x: int,
        y: int,
        address: int,
        size: int,
        checkpoint: Checkpoint = _no_checkpoint,
    ) -> bytes:
        """Read ``size`` bytes at ``address`` of job-relative chip (x, y).

        Raises
        ------
        SpinnmanInvalidParameterException
            Bad chip, address or size.
        SpinnmanTimeoutException
            The board did not answer (after the retries).
        """
        _check_span(address, size)
        board = board_of_chip(boards, x, y)
        if size == 0:
            return b""
        data = bytearray()
        with self._transceiver(boards, board) as transceiver:
            for start in range(0, size, CHUNK):
                checkpoint()
                length = min(CHUNK, size - start)
                data += transceiver.read_memory(x, y, address + start, length)
        return bytes(data)

    def write_memory(
        self,
        boards: JobBoards,
        x: int,
        y: int,
        address: int,
        data: bytes,
        checkpoint: Checkpoint = _no_checkpoint,
    ) -> None:
        """Write ``data`` at ``address`` of job-relative chip (x, y).

        Raises
        ------
        SpinnmanInvalidParameterException
            Bad chip, address or size.
        SpinnmanTimeoutException
            The board did not answer (after the retries).
        """
        _check_span(address, len(data))
        board = board_of_chip(boards, x, y)
        if not data:
            return
        view = memoryview(data)
        with self._transceiver(boards, board) as transceiver:
            for start in range(0, len(view), CHUNK):
                checkpoint()
                transceiver.write_memory(x, y, address + start, bytes(view[start : start + CHUNK]))

    def reset_router(
        self,
        boards: JobBoards,
        filters: dict[int, int],
        checkpoint: Checkpoint = _no_checkpoint,
    ) -> None:
        """On every chip of the job: clear the multicast routes, reset the diagnostic
        counters and install ``filters`` (index 0..15 -> 32-bit filter word).

        Raises
        ------
        SpinnmanInvalidParameterException
            A filter index or word is out of range, or the job has no boards.
        SpinnmanTimeoutException
            A chip did not answer (after the retries).
        """
        for index, word in filters.items():
            if not 0 <= index < N_FILTERS:
                raise SpinnmanInvalidParameterException(
                    "filter index", index, f"must be in 0..{N_FILTERS - 1}"
                )
            if not 0 <= word <= _U32:
                raise SpinnmanInvalidParameterException("filter word", word, "must be 32 bits")
        if not boards:
            raise SpinnmanInvalidParameterException("boards", boards, "the job has no boards")
        root = (0, 0) if (0, 0) in boards else next(iter(boards))
        checkpoint()
        with self._transceiver(boards, root) as transceiver:
            machine = transceiver.get_machine_details()
            by_board: defaultdict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
            for xy in sorted(machine.chips):
                by_board[machine.nearest_ethernet(*xy)].append(xy)

            def reset(chips: list[tuple[int, int]]) -> None:
                for x, y in chips:
                    checkpoint()
                    transceiver.clear_multicast_routes(x, y)
                    transceiver.clear_router_diagnostic_counters(x, y)
                    for index, word in sorted(filters.items()):
                        transceiver.set_router_diagnostic_filter(x, y, index, word)

            with ThreadPoolExecutor(max(1, len(by_board)), "spalloc-router") as pool:
                for future in [pool.submit(reset, chips) for chips in by_board.values()]:
                    future.result()
            log.info("router reset on %d chips of %d boards", machine.n_chips, len(boards))
