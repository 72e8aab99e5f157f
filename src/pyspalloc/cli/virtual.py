"""``pyspalloc virtual``: run a virtual SpiNNaker machine in the foreground."""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType

import click

from pyspalloc.geometry import MachineDefinitionError, machine_from_spec
from pyspalloc.geometry.chip_description import ChipDescription, load_chip_description
from pyspalloc.virtual import VirtualMachine
from pyspalloc.virtual.sdp_buffers import DEFAULT_SDP_BUFFERS


@click.command()
@click.option(
    "--machine",
    "spec",
    required=True,
    metavar="NAME|FILE",
    help="Built-in machine (spin5, spin24, spinnaker1m) or a JSON machine definition file.",
)
@click.option(
    "--address-base",
    default="127.1.0.0",
    show_default=True,
    help="Base of the standard IP plan for built-in machines.",
)
@click.option("--booted", is_flag=True, help="Power and boot every machine as one from (0,0,0).")
@click.option("--powered", is_flag=True, help="Power every board on (unbooted).")
@click.option("--latency-ms", default=0.0, show_default=True, help="Added round-trip latency.")
@click.option("--loss", default=0.0, show_default=True, help="Packet loss probability (0-1).")
@click.option(
    "--netinit", default=0.0, show_default=True, help="Seconds VER says 255,255 after boot."
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
    chips_file: str | None,
    sdp_buffers: int,
) -> None:
    """Run virtual SpiNN-5 boards and BMPs until SIGINT or SIGTERM.

    Prints one JSON line per board, then ``ready``.
    """
    try:
        definitions = machine_from_spec(spec, address_base)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--machine") from error
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
    try:
        machines = [
            VirtualMachine(
                definition,
                booted=booted,
                powered=powered,
                latency_ms=latency_ms,
                loss=loss,
                netinit=netinit,
                chips=chips,
                sdp_buffers=sdp_buffers,
            )
            for definition in definitions
        ]
    except MachineDefinitionError as error:
        raise click.BadParameter(str(error), param_hint="--chips") from error
    try:
        for machine in machines:
            try:
                machine.start()
            except OSError as error:
                raise click.ClickException(f"cannot bind the virtual machine: {error}") from error
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
        click.echo("ready")
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        for machine in machines:
            machine.stop()
