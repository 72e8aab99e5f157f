"""Checking a whole machine for an operator: what is wrong where, before it goes into use.

:func:`check_machine` powers every live board of a definition (in parallel per BMP,
every wait bounded), reads each BMP's version and each board's FPGA IDs (re-powering a
board whose IDs are wrong a bounded number of times), boots the machine with a given
image, discovers its chips and cores, probes every board-to-board link over its chip
links (CMD_LINK_READ across each one), and powers everything off again. The result is a
:class:`MachineReport` of problems per board and per link.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pyspalloc.exceptions import SpinnmanException
from pyspalloc.geometry import (
    BOARD_CHIPS,
    BOARD_EDGE_LINKS,
    FPGA_FLAG_REGISTER,
    Chip,
    Direction,
    Frame,
    MachineDefinition,
    Triad,
    ethernet_chip,
)
from pyspalloc.transceiver import bmp
from pyspalloc.transceiver.boot import boot_board, wait_until_booted
from pyspalloc.transceiver.connections import UDPConnection
from pyspalloc.transceiver.discovery import get_machine_details
from pyspalloc.transceiver.engine import EngineOptions, make_request, scp_stream
from pyspalloc.transceiver.machine_info import MachineInfo
from pyspalloc.wire.consts import SCP_PORT, SV_BASE
from pyspalloc.wire.scp import SCPCommand, SCPRequest, SCPResponse

__all__ = ["BoardReport", "CheckOptions", "LinkReport", "MachineReport", "check_machine"]

#: Cores of a perfect chip (monitor included).
FULL_CORES = 18


@dataclass(frozen=True)
class CheckOptions:
    """How a check runs.

    Attributes
    ----------
    boot_image:
        The SC&MP image to boot with (None: the synthetic image, which boots only
        virtual boards).
    timeout:
        Seconds per SCP attempt to a board or BMP.
    power_timeout:
        Seconds a BMP may take to switch power.
    boot_timeout:
        Seconds a booted machine may take to answer with real coordinates.
    fpga_retries:
        Power cycles of a board whose FPGA IDs are wrong, before it is reported.
    min_cores:
        Chips with fewer working cores are reported (real chips often have 17).
    bmp_workers:
        BMPs driven at once.
    """

    boot_image: bytes | None = None
    timeout: float = 0.5
    power_timeout: float = 10.0
    boot_timeout: float = 20.0
    fpga_retries: int = 1
    min_cores: int = 17
    bmp_workers: int = 16


@dataclass
class BoardReport:
    """What the check found on one board (chips in board-local coordinates)."""

    triad: Triad
    cabinet: int
    frame: int
    board: int
    ip: str
    bmp_ip: str
    bmp_version: str = ""
    fpga_ids: tuple[int, ...] = ()
    powered: bool = False
    booted: bool = False
    chips: int = 0
    cores: int = 0
    missing_chips: list[Chip] = field(default_factory=list)
    weak_chips: dict[Chip, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong with the board."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "x": self.triad.x,
            "y": self.triad.y,
            "z": self.triad.z,
            "cabinet": self.cabinet,
            "frame": self.frame,
            "board": self.board,
            "ip": self.ip,
            "bmp_ip": self.bmp_ip,
            "bmp_version": self.bmp_version,
            "fpga_ids": list(self.fpga_ids),
            "booted": self.booted,
            "chips": self.chips,
            "cores": self.cores,
            "missing_chips": [list(c) for c in self.missing_chips],
            "weak_chips": [[c.x, c.y, n] for c, n in sorted(self.weak_chips.items())],
            "problems": list(self.problems),
            "ok": self.ok,
        }


@dataclass
class LinkReport:
    """One board-to-board link: how many of its chip links answered a probe."""

    board: Triad
    direction: Direction
    other: Triad
    working: int = 0
    probed: int = 0
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "board": list(self.board),
            "direction": self.direction.name.lower(),
            "other": list(self.other),
            "working": self.working,
            "probed": self.probed,
            "problem": self.problem,
            "ok": not self.problem,
        }


@dataclass
class MachineReport:
    """The outcome of :func:`check_machine`."""

    machine: str
    boards: list[BoardReport]
    links: list[LinkReport]

    @property
    def problems(self) -> int:
        """Number of problems found (boards and links)."""
        return sum(len(b.problems) for b in self.boards) + sum(1 for k in self.links if k.problem)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "machine": self.machine,
            "problems": self.problems,
            "boards": [b.to_json() for b in self.boards],
            "links": [k.to_json() for k in self.links],
        }


def check_machine(
    definition: MachineDefinition,
    options: CheckOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> MachineReport:
    """Check every live board and link of ``definition`` on the hardware.

    Parameters
    ----------
    definition:
        The machine; its BMPs and boards must be reachable from here.
    options:
        Timeouts, boot image and thresholds.
    progress:
        Called with a line of text as each phase starts.

    Returns
    -------
    MachineReport
        Every board and link, with what is wrong (nothing raised for hardware faults).
    """
    options = options or CheckOptions()
    say = progress or (lambda text: None)
    reports = {
        b.triad: BoardReport(b.triad, *b.physical, b.ip, b.bmp_ip)
        for b in definition.boards.values()
        if b.functioning
    }
    frames = [f for f in definition.frames.values() if any(b.triad in reports for b in f.boards)]
    workers = max(1, min(options.bmp_workers, len(frames)))
    say(f"powering {len(reports)} boards through {len(frames)} BMPs")
    with ThreadPoolExecutor(workers, thread_name_prefix="check-bmp") as pool:
        list(pool.map(lambda frame: _power_up(frame, reports, options), frames))
    links: list[LinkReport] = []
    try:
        links = _boot_and_probe(definition, reports, options, say)
    finally:
        say("powering off")
        with ThreadPoolExecutor(workers, thread_name_prefix="check-bmp") as pool:
            list(pool.map(lambda frame: _power_down(frame, reports, options), frames))
    return MachineReport(definition.name, [reports[t] for t in sorted(reports)], links)


# -- BMPs ----------------------------------------------------------------------------


def _power_up(frame: Frame, reports: dict[Triad, BoardReport], options: CheckOptions) -> None:
    boards = [reports[b.triad] for b in frame.boards if b.triad in reports]
    numbers = [r.board for r in boards]
    try:
        version = bmp.read_bmp_version(frame.bmp_ip, min(numbers), timeout=options.timeout)
    except SpinnmanException as error:
        for report in boards:
            report.problems.append(f"BMP {frame.bmp_ip} does not answer: {error}")
        return
    text = f"{version.name} {version.version_string}"
    for report in boards:
        report.bmp_version = text
    try:
        bmp.power_on(frame.bmp_ip, numbers, timeout=options.power_timeout)
    except SpinnmanException as error:
        for report in boards:
            report.problems.append(f"power-on failed: {error}")
        return
    for report in boards:
        report.powered = True
        _check_fpgas(frame.bmp_ip, report, options)


def _read_fpga_ids(bmp_ip: str, board: int, options: CheckOptions) -> tuple[int, ...]:
    return tuple(
        bmp.read_fpga_register(bmp_ip, fpga, FPGA_FLAG_REGISTER, board, timeout=options.timeout) & 3
        for fpga in range(bmp.N_FPGAS)
    )


def _check_fpgas(bmp_ip: str, report: BoardReport, options: CheckOptions) -> None:
    expected = tuple(range(bmp.N_FPGAS))
    try:
        for attempt in range(options.fpga_retries + 1):
            report.fpga_ids = _read_fpga_ids(bmp_ip, report.board, options)
            if report.fpga_ids == expected or attempt == options.fpga_retries:
                break
            bmp.power_off(bmp_ip, [report.board], timeout=options.power_timeout)
            bmp.power_on(bmp_ip, [report.board], timeout=options.power_timeout)
    except SpinnmanException as error:
        report.problems.append(f"FPGA registers cannot be read: {error}")
        return
    if report.fpga_ids != expected:
        ids = ", ".join(str(i) for i in report.fpga_ids)
        report.problems.append(
            f"FPGA IDs read {ids} (expected 0, 1, 2) after {options.fpga_retries + 1} power-ons"
        )


def _power_down(frame: Frame, reports: dict[Triad, BoardReport], options: CheckOptions) -> None:
    boards = [reports[b.triad] for b in frame.boards if b.triad in reports]
    if not any(r.powered for r in boards):
        return
    try:
        bmp.power_off(frame.bmp_ip, [r.board for r in boards], timeout=options.power_timeout)
    except SpinnmanException as error:
        for report in boards:
            report.problems.append(f"power-off failed: {error}")


# -- boards --------------------------------------------------------------------------


class _Booted:
    """A machine booted from ``root``: where each board's chips are in its coordinates."""

    def __init__(self, definition: MachineDefinition, root: Triad, machine: MachineInfo) -> None:
        self.machine = machine
        self._root = ethernet_chip(root)
        self._size = (definition.chip_width, definition.chip_height)

    def chip(self, triad: Triad, local: Chip) -> tuple[int, int]:
        """Where board-local chip ``local`` of ``triad`` is in the booted machine."""
        ex, ey = ethernet_chip(triad)
        x = (ex - self._root[0]) % self._size[0] + local.x
        y = (ey - self._root[1]) % self._size[1] + local.y
        wrap_x, wrap_y = self.machine.wraps
        return (x % self.machine.width if wrap_x else x, y % self.machine.height if wrap_y else y)

    def has_board(self, triad: Triad) -> bool:
        """Whether the board's Ethernet chip is part of this booted machine."""
        chip = self.machine.chips.get(self.chip(triad, Chip(0, 0)))
        return chip is not None and chip.is_ethernet


def _boot_and_probe(
    definition: MachineDefinition,
    reports: dict[Triad, BoardReport],
    options: CheckOptions,
    say: Callable[[str], None],
) -> list[LinkReport]:
    engine = EngineOptions(8, options.timeout, 3, min(0.05, options.timeout))
    waiting = sorted(t for t, r in reports.items() if r.powered)
    booted: dict[Triad, _Booted] = {}
    first = True
    while waiting:
        root = waiting.pop(0)
        report = reports[root]
        say(f"booting from board {tuple(root)} ({report.ip})")
        try:
            boot_board(report.ip, image=options.boot_image)
            with UDPConnection(report.ip, SCP_PORT) as connection:
                wait_until_booted(connection, options.boot_timeout)
                machine = get_machine_details(connection, engine)
        except SpinnmanException as error:
            report.problems.append(f"does not boot: {error}")
            continue
        seen = _Booted(definition, root, machine)
        for triad in [root, *waiting]:
            if triad == root or seen.has_board(triad):
                booted[triad] = seen
                _count(triad, reports[triad], seen, options)
                if not first:
                    reports[triad].problems.append(
                        "not reached when the first board booted (its links are down)"
                    )
        waiting = [t for t in waiting if t not in booted]
        first = False
    say("probing board-to-board links")
    return [_probe(a, d, b, booted, reports, engine) for a, d, b in definition.live_links()]


def _count(triad: Triad, report: BoardReport, seen: _Booted, options: CheckOptions) -> None:
    report.booted = True
    for local in BOARD_CHIPS:
        chip = seen.machine.chips.get(seen.chip(triad, local))
        if chip is None:
            report.missing_chips.append(local)
            continue
        report.chips += 1
        report.cores += chip.n_cores
        if chip.n_cores < FULL_CORES:
            report.weak_chips[local] = chip.n_cores
    if report.missing_chips:
        where = " ".join(f"({c.x},{c.y})" for c in report.missing_chips)
        report.problems.append(f"{len(report.missing_chips)} chips missing: {where}")
    weak = {c: n for c, n in report.weak_chips.items() if n < options.min_cores}
    if weak:
        where = " ".join(f"({c.x},{c.y}):{n}" for c, n in sorted(weak.items()))
        report.problems.append(
            f"{len(weak)} chips with fewer than {options.min_cores} cores: {where}"
        )


def _probe(
    a: Triad,
    direction: Direction,
    b: Triad,
    booted: dict[Triad, _Booted],
    reports: dict[Triad, BoardReport],
    engine: EngineOptions,
) -> LinkReport:
    link = LinkReport(a, direction, b)
    seen = booted.get(a)
    if seen is None or booted.get(b) is not seen:
        down = a if seen is None else b
        link.problem = (
            f"not probed: board {tuple(down)} is not up with {tuple(a if down == b else b)}"
        )
        return link
    pairs = [
        (seen.chip(a, local), chip_link)
        for (local, chip_link), (d, reached) in sorted(BOARD_EDGE_LINKS.items())
        if d == direction
        and seen.chip(a, local) in seen.machine.chips
        and seen.chip(b, reached) in seen.machine.chips
    ]
    with UDPConnection(reports[a].ip, SCP_PORT) as connection:
        requests: list[SCPRequest] = [
            make_request(connection, x, y, 0, SCPCommand.LINK_READ, SV_BASE, 4, chip_link)
            for (x, y), chip_link in pairs
        ]
        working: set[int] = set()

        def keep(index: int, reply: SCPResponse) -> None:
            working.add(index)

        def failed(index: int, request: SCPRequest, error: SpinnmanException) -> None:
            pass  # a chip link that does not answer is what is being looked for

        scp_stream(
            connection,
            requests,
            keep,
            engine.changed(retries=1),
            on_error=failed,
        )
    link.probed, link.working = len(pairs), len(working)
    if not pairs:
        link.problem = "no chips on either side to probe"
    elif not working:
        link.problem = f"dead: none of {len(pairs)} chip links answers"
    elif link.working < link.probed:
        link.problem = f"{link.probed - link.working} of {link.probed} chip links do not answer"
    return link
