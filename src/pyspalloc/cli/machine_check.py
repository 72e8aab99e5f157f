"""``pyspalloc machine check``: power, boot and probe a machine, and say what is wrong where."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from pyspalloc.cli.output import error_console, print_json, print_table
from pyspalloc.geometry import machine_from_spec
from pyspalloc.machine_check import CheckOptions, MachineReport, check_machine


@click.group()
def machine() -> None:
    """Operator tools for the hardware of a machine."""


@machine.command()
@click.argument("spec", metavar="NAME|FILE")
@click.option(
    "--address-base",
    default="127.1.0.0",
    show_default=True,
    help="Base of the standard IP plan, for a built-in machine NAME.",
)
@click.option(
    "--boot-image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The SC&MP image to boot with (default: the synthetic image, virtual boards only).",
)
@click.option("--timeout", default=0.5, show_default=True, help="Seconds per SCP attempt.")
@click.option("--power-timeout", default=10.0, show_default=True, help="Seconds per power switch.")
@click.option("--boot-timeout", default=20.0, show_default=True, help="Seconds for a boot.")
@click.option(
    "--min-cores",
    default=17,
    show_default=True,
    type=click.IntRange(1, 18),
    help="Report chips with fewer working cores.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(
    spec: str,
    address_base: str,
    boot_image: Path | None,
    timeout: float,
    power_timeout: float,
    boot_timeout: float,
    min_cores: int,
    as_json: bool,
) -> None:
    """Check every board and link of machine NAME or of the definitions in FILE.

    Powers each board (in parallel per BMP), reads the BMP version and FPGA IDs, boots,
    counts chips and cores, probes the links between boards, and powers off. Exits 1
    if anything is wrong.
    """
    try:
        definitions = machine_from_spec(spec, address_base)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME|FILE") from error
    options = CheckOptions(
        boot_image=boot_image.read_bytes() if boot_image is not None else None,
        timeout=timeout,
        power_timeout=power_timeout,
        boot_timeout=boot_timeout,
        min_cores=min_cores,
    )
    progress = None if as_json else (lambda text: error_console.print(f"[dim]{text}[/]"))
    reports = [check_machine(definition, options, progress) for definition in definitions]
    if as_json:
        data = [r.to_json() for r in reports]
        print_json(data[0] if len(data) == 1 else data)
    else:
        for report in reports:
            _print(report)
    if any(r.problems for r in reports):
        raise SystemExit(1)


def _problems(lines: list[str]) -> Text:
    if not lines:
        return Text("ok", style="green")
    return Text("; ".join(lines), style="red")


def _print(report: MachineReport) -> None:
    rows = [
        [
            f"{b.triad.x},{b.triad.y},{b.triad.z}",
            f"{b.cabinet},{b.frame},{b.board}",
            b.ip,
            b.bmp_version or None,
            ",".join(str(i) for i in b.fpga_ids) or None,
            b.chips if b.booted else None,
            b.cores if b.booted else None,
            _problems(b.problems),
        ]
        for b in report.boards
    ]
    print_table(
        f"Machine {report.machine}: boards",
        ["Board", "c,f,b", "IP", "BMP", "FPGA IDs", "Chips", "Cores", "Problems"],
        rows,
    )
    bad = [k for k in report.links if k.problem]
    print_table(
        f"Links: {len(report.links) - len(bad)} of {len(report.links)} fine",
        ["Board", "Direction", "Other", "Chip links", "Problem"],
        [
            [
                ",".join(str(v) for v in k.board),
                k.direction.name.lower(),
                ",".join(str(v) for v in k.other),
                f"{k.working}/{k.probed}",
                _problems([k.problem]),
            ]
            for k in bad
        ],
    )
    verdict = "no problems" if not report.problems else f"{report.problems} problems"
    print_table(None, ["Machine", "Verdict"], [[report.machine, verdict]])
