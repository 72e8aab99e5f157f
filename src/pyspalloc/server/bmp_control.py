"""The hardware :class:`~pyspalloc.server.controller.MachineController`: BMPs over UDP.

Power changes go to each frame's BMP (grouped, one thread per BMP). After power-on, as
the Java server does, each board's BMP version is read (firmware before 2.0 cannot
manage FPGAs: those boards skip the FPGA steps), each FPGA's ID is checked in its FLAG
register (boards with a wrong ID are powered on again, a bounded number of times), and
every link is set through its FPGA STOP register: links on the job's perimeter (to
boards outside the job, or dead) are stopped, all others run. The boards are then handed
over powered but *not booted*: the job's user boots them through the proxy's boot
connection with the real SC&MP image. Only when the operator gives a boot image
(``pyspalloc serve --boot-image``) does the controller boot the job's root board itself
and poll it with CMD_VER until it answers; because the perimeter is stopped, the boot
floods only the job's boards.

A BMP that stays silent or refuses, or FPGAs that never report their IDs, fail their
boards for good: :class:`BMPBoardsFailed` names them, and the lifecycle takes them out
of service. Every SCP exchange has a timeout, and every step is retried a bounded number
of times. The same code drives :mod:`pyspalloc.virtual` BMPs and real hardware: it only
knows IP addresses.

The controller's calls block; the lifecycle runs them in its worker threads, never on
the event loop.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pyspalloc.exceptions import (
    SpinnmanException,
    SpinnmanGenericProcessException,
    SpinnmanUnexpectedResponseCodeException,
)
from pyspalloc.geometry import Direction
from pyspalloc.server.controller import BoardsFailed
from pyspalloc.transceiver import bmp, boot
from pyspalloc.transceiver.connections import UDPConnection
from pyspalloc.wire.consts import SCP_PORT

if TYPE_CHECKING:
    from pyspalloc.geometry import MachineDefinition, Triad

__all__ = [
    "BMPBoardsFailed",
    "BMPControlError",
    "BMPControlOptions",
    "BMPMachineController",
    "retry",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


#: BMP firmware major version from which FPGAs can be managed (Java's minimum)
FPGA_BMP_VERSION = 2


class BMPControlError(SpinnmanException):
    """A power, link or boot step failed after all its retries."""


class BMPBoardsFailed(BMPControlError, BoardsFailed):
    """Boards whose BMP or FPGAs failed after all retries: to be taken out of service."""

    def __init__(self, reason: str, boards: list[Triad]) -> None:
        BMPControlError.__init__(self, reason)
        self.reason = reason
        self.boards = tuple(boards)


@dataclass(frozen=True)
class BMPControlOptions:
    """Timeouts and retry bounds of the BMP controller.

    Parameters
    ----------
    power_attempts:
        Tries of each power command per BMP.
    link_attempts:
        Tries of each board's link (FPGA register) set-up.
    boot_attempts:
        Tries of booting the root board.
    retry_delay:
        Seconds between tries.
    power_timeout:
        Seconds to wait for a BMP to answer a power command.
    register_timeout:
        Seconds to wait for each FPGA register write.
    boot_timeout:
        Seconds to wait for a booted root board to answer CMD_VER.
    boot_image:
        The SC&MP image to boot each job's root board with after power-on; None (the
        default, as in the Java server) hands the boards over unbooted.
    fpga_attempts:
        Power-ons of a board whose FPGAs do not report their own numbers in their FLAG
        registers after power-on; 0 skips the check (BMP firmware before 2.0).
    """

    power_attempts: int = 3
    link_attempts: int = 3
    fpga_attempts: int = 3
    boot_attempts: int = 3
    retry_delay: float = 0.5
    power_timeout: float = 5.0
    register_timeout: float = 0.5
    boot_timeout: float = 15.0
    boot_image: bytes | None = None


def retry(what: str, attempts: int, delay: float, action: Callable[[], T]) -> T:
    """Run ``action`` up to ``attempts`` times, sleeping ``delay`` s between failures.

    Raises
    ------
    BMPControlError
        When the last attempt fails too (chained to its error).
    """
    last: Exception | None = None
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return action()
        except (SpinnmanException, OSError) as error:
            last = error
            log.warning("%s failed (attempt %d of %d): %s", what, attempt, attempts, error)
            if attempt < attempts:
                time.sleep(delay)
    raise BMPControlError(f"{what} failed after {attempts} attempts: {last}") from last


def _refused(error: BaseException) -> bool:
    """Whether the last try behind ``error`` got an error code (not silence)."""
    cause = error.__cause__
    if isinstance(cause, SpinnmanGenericProcessException):
        cause = cause.exception
    return isinstance(cause, SpinnmanUnexpectedResponseCodeException)


def _by_bmp(machine: MachineDefinition, boards: Iterable[Triad]) -> dict[str, list[Triad]]:
    groups: defaultdict[str, list[Triad]] = defaultdict(list)
    for triad in boards:
        definition = machine.boards.get(triad)
        if definition is None:
            raise BMPControlError(f"board {tuple(triad)} is not in machine {machine.name}")
        if not definition.bmp_ip:
            log.warning("board %s of %s has no BMP: not power-switched", triad, machine.name)
            continue
        groups[definition.bmp_ip].append(triad)
    return dict(groups)


class BMPMachineController:
    """Powers boards, sets links and boots jobs through BMPs and boards by IP address.

    Parameters
    ----------
    options:
        Timeouts and retry bounds (defaults suit both hardware and virtual machines).
    port:
        The SCP port of BMPs and boards.
    """

    def __init__(self, options: BMPControlOptions | None = None, *, port: int = SCP_PORT) -> None:
        self.options = options or BMPControlOptions()
        self.port = port

    # ---- MachineController -----------------------------------------------------------
    def power_on_job(
        self,
        machine: MachineDefinition,
        boards: list[Triad],
        perimeter: list[tuple[Triad, Direction]],
    ) -> None:
        """Power on ``boards``, check their FPGAs, stop the ``perimeter`` links and run
        all others; boot the root only when the options give a boot image.

        The root is ``boards[0]`` (the lifecycle lists boards by triad, so the job's
        root comes first unless its rectangle wraps round the machine's edge).

        Raises
        ------
        BMPBoardsFailed
            Boards whose BMP or FPGAs failed after the retries.
        BMPControlError
            Another step (the boot) failed after its retries.
        """
        if not boards:
            return
        stopped = {(tuple(t), d) for t, d in perimeter}
        groups = _by_bmp(machine, boards)

        def bring_up(bmp_ip: str, triads: list[Triad]) -> None:
            self._power(machine, bmp_ip, triads, on=True)
            managed = self._fpga_capable(machine, bmp_ip, triads)
            self._check_fpgas(machine, bmp_ip, managed)
            self._set_links(machine, bmp_ip, managed, stopped)

        self._each_bmp(groups, bring_up)
        image = self.options.boot_image
        if image is not None:
            self.boot_board(machine.boards[boards[0]].ip, image)

    def power_off(self, machine: MachineDefinition, boards: list[Triad]) -> None:
        """Power off ``boards``.

        Raises
        ------
        BMPBoardsFailed
            A BMP did not switch after its retries.
        """
        if not boards:
            return
        self._each_bmp(
            _by_bmp(machine, boards),
            lambda bmp_ip, triads: self._power(machine, bmp_ip, triads, on=False),
        )

    # ---- steps -----------------------------------------------------------------------
    def _each_bmp(
        self, groups: dict[str, list[Triad]], work: Callable[[str, list[Triad]], None]
    ) -> None:
        """Run ``work`` for every BMP in parallel.

        Raises the failed boards of every BMP together, else the first other failure.
        """
        if len(groups) == 1:
            ((bmp_ip, triads),) = groups.items()
            work(bmp_ip, triads)
            return
        with ThreadPoolExecutor(max(1, len(groups)), "spalloc-bmp") as pool:
            futures = [pool.submit(work, ip, triads) for ip, triads in groups.items()]
            errors = [e for e in (f.exception() for f in futures) if e is not None]
        failed = [e for e in errors if isinstance(e, BMPBoardsFailed)]
        if failed:
            boards = [t for e in failed for t in e.boards]
            raise BMPBoardsFailed("; ".join(e.reason for e in failed), boards)
        if errors:
            raise errors[0]

    def _connection(self, ip: str) -> UDPConnection:
        return UDPConnection(ip, self.port)

    def _power(
        self, machine: MachineDefinition, bmp_ip: str, triads: list[Triad], on: bool
    ) -> None:
        numbers = sorted({machine.boards[t].physical.board for t in triads})
        o = self.options
        what = f"power {'on' if on else 'off'} of boards {numbers} at BMP {bmp_ip}"
        switch = bmp.power_on if on else bmp.power_off
        with self._connection(bmp_ip) as connection:
            try:
                retry(
                    what,
                    o.power_attempts,
                    o.retry_delay,
                    lambda: switch(connection, numbers, timeout=o.power_timeout, retries=0),
                )
            except BMPControlError as error:
                culprits = triads
                if len(triads) > 1 and _refused(error):
                    # the BMP answers but refuses: find the boards it refuses, one by one
                    culprits = [
                        t
                        for t in triads
                        if not self._power_one(connection, machine.boards[t].physical.board, on)
                    ]
                    if not culprits:
                        log.info("%s done one board at a time", what)
                        return
                    failed = [machine.boards[t].physical.board for t in culprits]
                    error = BMPControlError(f"{error} (refused for boards {failed})")
                raise BMPBoardsFailed(str(error), culprits) from error
        log.info("%s done", what)

    def _power_one(self, connection: UDPConnection, number: int, on: bool) -> bool:
        """Switch board ``number`` of the BMP's frame alone; return whether it worked."""
        o = self.options
        switch = bmp.power_on if on else bmp.power_off
        try:
            switch(connection, [number], timeout=o.power_timeout, retries=0)
        except SpinnmanException:
            return False
        return True

    def _fpga_capable(
        self, machine: MachineDefinition, bmp_ip: str, triads: list[Triad]
    ) -> list[Triad]:
        """Read each board's BMP version; return the boards whose BMP manages FPGAs."""
        o = self.options
        capable = []
        with self._connection(bmp_ip) as connection:
            for triad in triads:
                number = machine.boards[triad].physical.board

                def read(number: int = number) -> tuple[int, int, int]:
                    info = bmp.read_bmp_version(connection, number, timeout=o.register_timeout)
                    return info.version

                what = f"BMP version read of board {number} at BMP {bmp_ip}"
                try:
                    version = retry(what, o.link_attempts, o.retry_delay, read)
                except BMPControlError as error:
                    raise BMPBoardsFailed(str(error), [triad]) from error
                if version[0] >= FPGA_BMP_VERSION:
                    capable.append(triad)
                else:
                    log.warning(
                        "board %d at BMP %s runs BMP firmware %s: FPGA check and links skipped",
                        number,
                        bmp_ip,
                        ".".join(map(str, version)),
                    )
        return capable

    def _check_fpgas(self, machine: MachineDefinition, bmp_ip: str, triads: list[Triad]) -> None:
        """Re-power boards whose FPGAs are not ready, a bounded number of times."""
        o = self.options
        if o.fpga_attempts <= 0:
            return
        pending = list(triads)
        with self._connection(bmp_ip) as connection:
            for attempt in range(1, o.fpga_attempts + 1):
                bad = []
                for triad in pending:
                    number = machine.boards[triad].physical.board

                    def check(number: int = number) -> bool:
                        return bmp.check_fpga_ids(connection, number, timeout=o.register_timeout)

                    try:  # as in Java, an FPGA that does not answer is a bad FPGA
                        ok = retry(
                            f"FPGA check of board {number} at BMP {bmp_ip}",
                            o.link_attempts,
                            o.retry_delay,
                            check,
                        )
                    except BMPControlError:
                        ok = False
                    if not ok:
                        bad.append(triad)
                if not bad:
                    return
                pending = bad
                log.warning(
                    "FPGAs of %d boards at BMP %s not ready (try %d)", len(bad), bmp_ip, attempt
                )
                if attempt < o.fpga_attempts:
                    self._power(machine, bmp_ip, bad, on=True)
        numbers = [machine.boards[t].physical.board for t in pending]
        raise BMPBoardsFailed(
            f"FPGAs of boards {numbers} at BMP {bmp_ip} not ready after {o.fpga_attempts} "
            "power-ons (wrong or no ID in their FLAG registers)",
            pending,
        )

    def _set_links(
        self,
        machine: MachineDefinition,
        bmp_ip: str,
        triads: list[Triad],
        stopped: set[tuple[tuple[int, ...], Direction]],
    ) -> None:
        o = self.options
        with self._connection(bmp_ip) as connection:
            for triad in triads:
                number = machine.boards[triad].physical.board

                def set_all(triad: Triad = triad, number: int = number) -> None:
                    for direction in Direction:
                        enabled = (tuple(triad), direction) not in stopped
                        bmp.set_link_enabled(
                            connection, number, direction, enabled, timeout=o.register_timeout
                        )

                try:
                    retry(
                        f"link set-up of board {number} at BMP {bmp_ip}",
                        o.link_attempts,
                        o.retry_delay,
                        set_all,
                    )
                except BMPControlError as error:
                    raise BMPBoardsFailed(str(error), [triad]) from error

    def boot_board(self, ip: str, image: bytes) -> None:
        """Boot the board at ``ip`` with ``image`` and wait until it answers CMD_VER
        with its chip.

        Raises
        ------
        BMPControlError
            The board did not come up after the boot retries.
        """
        o = self.options

        def attempt() -> None:
            boot.boot_board(ip, image=image)
            with self._connection(ip) as connection:
                boot.wait_until_booted(connection, o.boot_timeout)

        retry(f"boot of board {ip}", o.boot_attempts, o.retry_delay, attempt)
        log.info("board %s booted", ip)
