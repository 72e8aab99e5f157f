"""``pyspalloc where-is``: find a board or chip by any of its coordinates."""

from __future__ import annotations

from typing import Any

import click

from pyspalloc.cli.errors import EXIT_NOT_FOUND, CLIError, client_errors
from pyspalloc.cli.lookup import describe_job, find_machine
from pyspalloc.cli.options import connect, json_option, service_options
from pyspalloc.cli.output import print_fields, print_json


def normalise(found: dict[str, Any]) -> dict[str, Any]:
    """The service's where-is object with Python-friendly keys."""
    return {
        "machine": found.get("machine"),
        "logical": found.get("logical-board-coordinates"),
        "physical": found.get("physical-board-coordinates"),
        "chip": found.get("chip"),
        "board_chip": found.get("board-chip"),
        "job_id": found.get("job-id"),
        "job_chip": found.get("job-chip"),
    }


def _xyz(value: Any) -> str | None:
    return None if not value else ", ".join(str(v) for v in value)


@click.command("where-is")
@click.option("--job", "job_chip", nargs=3, type=int, default=None, metavar="ID X Y",
              help="Chip (X, Y) of job ID (job-relative).")  # fmt: skip
@click.option("--chip", nargs=3, default=None, metavar="MACHINE X Y", help="Chip of a machine.")
@click.option("--triad", "--logical", "triad", nargs=4, default=None, metavar="MACHINE X Y Z",
              help="Board by triad coordinates.")  # fmt: skip
@click.option("--physical", nargs=4, default=None, metavar="MACHINE C F B",
              help="Board by cabinet, frame and board.")  # fmt: skip
@click.option("--ip", nargs=2, default=None, metavar="MACHINE ADDRESS", help="Board by IP.")
@service_options
@json_option
def where_is(
    job_chip: tuple[int, int, int] | None,
    chip: tuple[str, str, str] | None,
    triad: tuple[str, str, str, str] | None,
    physical: tuple[str, str, str, str] | None,
    ip: tuple[str, str] | None,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Locate a board or chip: give exactly one of the options.

    Exit code 4 if nothing is there.
    """
    given = [q for q in (job_chip, chip, triad, physical, ip) if q is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --job, --chip, --triad, --physical and --ip")
    client, settings = connect(url, username, password, token)
    with client, client_errors(settings.url):
        try:
            if job_chip is not None:
                job_id, x, y = job_chip
                what = f"chip ({x}, {y}) of job {job_id}"
                job = client.get_job(job_id)
                describe_job(job, allocation=False)  # CLIError if there is no such job
                found = job.where_is_chip(x, y)
            elif chip is not None:
                name, x, y = chip[0], int(chip[1]), int(chip[2])
                what = f"chip ({x}, {y}) of {name}"
                found = find_machine(client, name).where_is_chip(x, y)
            elif triad is not None:
                name, x, y, z = triad[0], int(triad[1]), int(triad[2]), int(triad[3])
                what = f"board ({x}, {y}, {z}) of {name}"
                found = find_machine(client, name).where_is_logical(x, y, z)
            elif physical is not None:
                name, c, f, b = physical[0], int(physical[1]), int(physical[2]), int(physical[3])
                what = f"cabinet {c}, frame {f}, board {b} of {name}"
                found = find_machine(client, name).where_is_physical(c, f, b)
            else:
                assert ip is not None
                name, address = ip
                what = f"board {address} of {name}"
                found = find_machine(client, name).where_is_ip(address)
        except ValueError as error:
            raise click.UsageError(f"coordinates must be integers ({error})") from None
    if found is None:
        raise CLIError(f"nothing at {what}", EXIT_NOT_FOUND)
    result = normalise(found)
    if job_chip is not None:
        result["job_id"] = job_chip[0]
        result["job_chip"] = result["job_chip"] or result["chip"]
    if as_json:
        print_json(result)
        return
    phys = result["physical"]
    print_fields(
        {
            "Machine": result["machine"],
            "Physical location": None
            if not phys
            else f"Cabinet {phys[0]}, Frame {phys[1]}, Board {phys[2]}",
            "Board (x, y, z)": _xyz(result["logical"]),
            "Chip": _xyz(result["chip"]),
            "Board's Ethernet chip": _xyz(result["board_chip"]),
            "Job using the board": result["job_id"],
            "Coordinates within job": _xyz(result["job_chip"]),
        }
    )
