"""The hardware :class:`~pyspalloc.server.controller.MachineController`: BMPs over UDP.

Power changes go to each frame's BMP (grouped, one thread per BMP). After power-on,
every link of each board is set through its FPGA STOP register: links on the job's
perimeter (to boards outside the job, or dead) are stopped, all others run. Then the
job's root board is booted and polled with CMD_VER until it answers; because the
perimeter is stopped, the boot floods only the job's boards. Every SCP exchange has a
timeout, and every step is retried a bounded number of times. The same code drives
:mod:`pyspalloc.virtual` BMPs and real hardware: it only knows IP addresses.

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

from pyspalloc.exceptions import SpinnmanException
from pyspalloc.geometry import Direction
from pyspalloc.transceiver import bmp, boot
from pyspalloc.transceiver.connections import UDPConnection
from pyspalloc.wire.scp import SCP_PORT

if TYPE_CHECKING:
    from pyspalloc.geometry import MachineDefinition, Triad

__all__ = [
    "BMPControlError",
    "BMPControlOptions",
    "BMPMachineController",
    "retry",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class BMPControlError(SpinnmanException):
    """A power, link or boot step failed after all its retries."""


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
    boot:
        Whether to boot the job's root board after power-on.
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
    boot: bool = True


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
        """Power on ``boards``, stop the ``perimeter`` links, run all others, boot the root.

        The root is ``boards[0]`` (the lifecycle lists boards by triad, so the job's
        root comes first unless its rectangle wraps round the machine's edge).

        Raises
        ------
        BMPControlError
            A step failed after its retries.
        """
        if not boards:
            return
        stopped = {(tuple(t), d) for t, d in perimeter}
        groups = _by_bmp(machine, boards)

        def bring_up(bmp_ip: str, triads: list[Triad]) -> None:
            self._power(machine, bmp_ip, triads, on=True)
            self._check_fpgas(machine, bmp_ip, triads)
            self._set_links(machine, bmp_ip, triads, stopped)

        self._each_bmp(groups, bring_up)
        if self.options.boot:
            self.boot_board(machine.boards[boards[0]].ip)

    def power_off(self, machine: MachineDefinition, boards: list[Triad]) -> None:
        """Power off ``boards``.

        Raises
        ------
        BMPControlError
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
        """Run ``work`` for every BMP in parallel; raise the first failure."""
        if len(groups) == 1:
            ((bmp_ip, triads),) = groups.items()
            work(bmp_ip, triads)
            return
        with ThreadPoolExecutor(max(1, len(groups)), "spalloc-bmp") as pool:
            futures = [pool.submit(work, ip, triads) for ip, triads in groups.items()]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

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
            retry(
                what,
                o.power_attempts,
                o.retry_delay,
                lambda: switch(connection, numbers, timeout=o.power_timeout, retries=0),
            )
        log.info("%s done", what)

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

                    ok = retry(
                        f"FPGA check of board {number} at BMP {bmp_ip}",
                        o.link_attempts,
                        o.retry_delay,
                        check,
                    )
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
        raise BMPControlError(
            f"FPGAs of boards {[tuple(t) for t in pending]} at BMP {bmp_ip} not ready "
            f"after {o.fpga_attempts} power-ons"
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

                retry(
                    f"link set-up of board {number} at BMP {bmp_ip}",
                    o.link_attempts,
                    o.retry_delay,
                    set_all,
                )

    def boot_board(self, ip: str) -> None:
        """Boot the board at ``ip`` and wait until it answers CMD_VER with its chip.

        Raises
        ------
        BMPControlError
            The board did not come up after the boot retries.
        """
        o = self.options

        def attempt() -> None:
            boot.boot_board(ip)
            with self._connection(ip) as connection:
                boot.wait_until_booted(connection, o.boot_timeout)

        retry(f"boot of board {ip}", o.boot_attempts, o.retry_delay, attempt)
        log.info("board %s booted", ip)
