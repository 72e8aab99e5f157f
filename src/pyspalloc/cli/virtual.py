"""``pyspalloc virtual``: run a virtual SpiNNaker machine in the foreground."""

from __future__ import annotations

import errno
import ipaddress
import json
import signal
import sys
import threading
from types import FrameType

import click

from pyspalloc.geometry import MachineDefinitionError, machine_from_spec, parse_machine_spec
from pyspalloc.geometry.chip_description import ChipDescription, load_chip_description
from pyspalloc.virtual import VirtualMachine
from pyspalloc.virtual.memory import DEFAULT_BUDGET
from pyspalloc.virtual.sdp_buffers import DEFAULT_SDP_BUFFERS

#: ``--address-base`` value asking for the first free base
AUTO = "auto"
#: where the search for a free base starts, and how many /16 ranges it tries
FIRST_BASE = "127.1.0.0"
BASE_ATTEMPTS = 200


def _bases(spec: str, address_base: str) -> list[str | None]:
    """The address bases to try, in order (None: the spec's own addresses)."""
    parsed = parse_machine_spec(spec)
    if not parsed.builtin:
        return [None]
    if parsed.address_base:
        return [parsed.address_base]
    if address_base != AUTO:
        return [address_base]
    first = ipaddress.IPv4Address(FIRST_BASE)
    return [str(first + (step << 16)) for step in range(BASE_ATTEMPTS)]


def _start(spec: str, bases: list[str | None], **options: object) -> list[VirtualMachine]:
    """Start the spec's machines on the first base whose addresses are all free."""
    for attempt, base in enumerate(bases, 1):
        try:
            definitions = machine_from_spec(spec, base) if base else machine_from_spec(spec)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--machine") from error
        started: list[VirtualMachine] = []
        try:
            for definition in definitions:
                started.append(VirtualMachine(definition, **options).start())  # type: ignore[arg-type]
        except OSError as error:
            for machine in started:
                machine.stop()
            if error.errno == errno.EADDRINUSE and attempt < len(bases):
                continue  # some address of this range is taken: try the next range
            raise click.ClickException(f"cannot bind the virtual machine: {error}") from error
        return started
    raise click.ClickException("no free address range for the virtual machine")


def _board_lines(machine: VirtualMachine) -> None:
    for triad, board in sorted(machine.boards.items()):
        physical = board.definition.physical
        line = {
            "x": triad.x,
            "y": triad.y,
            "z": triad.z,
            "cabinet": physical.cabinet,
            "frame": physical.frame,
            "board": physical.board,
            "ip": board.ip,
            "bmp_ip": board.definition.bmp_ip,
        }
        click.echo(json.dumps(line))


def _watch_stdin(stop: threading.Event) -> None:
    """Set ``stop`` when standard input ends (the parent closed it or died)."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


@click.command()
@click.option(
    "--machine",
    "spec",
    required=True,
    metavar="NAME[@BASE]|FILE",
    help="Built-in machine (spin5, spin24, spinnaker1m), optionally at an address base "
    "(spin24@127.5.0.0), or a JSON machine definition file.",
)
@click.option(
    "--address-base",
    default=FIRST_BASE,
    show_default=True,
    help="Base of the standard IP plan for built-in machines; 'auto': the first base "
    f"from {FIRST_BASE} on (in steps of a /16) whose addresses are all free.",
)
@click.option("--booted", is_flag=True, help="Power and boot every machine as one from (0,0,0).")
@click.option("--powered", is_flag=True, help="Power every board on (unbooted).")
@click.option("--latency-ms", default=0.0, show_default=True, help="Added round-trip latency.")
@click.option("--loss", default=0.0, show_default=True, help="Packet loss probability (0-1).")
@click.option(
    "--netinit", default=0.0, show_default=True, help="Seconds VER says 255,255 after boot."
)
@click.option(
    "--memory-mib",
    type=click.IntRange(0, 1 << 20),
    default=DEFAULT_BUDGET >> 20,
    show_default=True,
    help="Chip memory the machine may hold (written pages and fill runs; unwritten and "
    "filled memory cost nothing); beyond it writes are answered RC_BUF.",
)
@click.option(
    "--exit-on-eof",
    is_flag=True,
    help="Also stop when standard input ends (for a parent process that owns this one).",
)
@click.option(
    "--chips",
    "chips_file",
    default=None,
    metavar="FILE",
    help="A recorded machine (Java's chip-level JSON) for the boards to reproduce: "
    "missing chips, core counts, dead links.",
)
@click.option(
    "--sdp-buffers",
    default=DEFAULT_SDP_BUFFERS,
    show_default=True,
    type=click.IntRange(min=0),
    help="SDP messages a board's SC&MP holds at once; a burst beyond is dropped (0: no limit).",
)
def virtual(
    spec: str,
    address_base: str,
    booted: bool,
    powered: bool,
    latency_ms: float,
    loss: float,
    netinit: float,
    memory_mib: int,
    exit_on_eof: bool,
    chips_file: str | None,
    sdp_buffers: int,
) -> None:
    """Run virtual SpiNN-5 boards and BMPs until SIGINT or SIGTERM.

    Prints one JSON line per board, then ``ready``. A built-in machine's address base is
    the BMP address of its cabinet 0, frame 0 (``bmp_ip`` of board 0, 0, 0).
    """
    try:
        bases = _bases(spec, address_base)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--machine/--address-base") from error
    if not 0.0 <= loss <= 1.0 or latency_ms < 0:
        raise click.BadParameter("need latency >= 0 and 0 <= loss <= 1")
    chips: ChipDescription | None = None
    if chips_file is not None:
        try:
            chips = load_chip_description(chips_file)
        except MachineDefinitionError as error:
            raise click.BadParameter(str(error), param_hint="--chips") from error
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if exit_on_eof:
        _watch_stdin(stop)
    try:
        machines = _start(
            spec,
            bases,
            booted=booted,
            powered=powered,
            latency_ms=latency_ms,
            loss=loss,
            netinit=netinit,
            memory_budget=memory_mib << 20,
            chips=chips,
            sdp_buffers=sdp_buffers,
        )
    except MachineDefinitionError as error:
        raise click.BadParameter(str(error), param_hint="--chips") from error
    try:
        for machine in machines:
            _board_lines(machine)
        click.echo("ready")
        sys.stdout.flush()
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        for machine in machines:
            machine.stop()
