"""``pyspalloc machines [NAME]``: list the machines, or map one with its jobs."""

from __future__ import annotations

from typing import Any

import click

from pyspalloc.cli.common import (
    all_triads,
    board_map,
    client_errors,
    connect,
    dead_triads,
    find_machine,
    json_option,
    service_options,
)
from pyspalloc.cli.output import console, print_json, print_table
from pyspalloc.client import SpallocClient, SpallocMachine

#: letters given to jobs on a map, in order of job id
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWYZabcdefghijklmnopqrstuvwyz"
#: colours of the jobs on a map, in the same order
COLOURS = ["green", "cyan", "magenta", "yellow", "blue", "bright_red", "bright_green"]
FREE, DEAD = ".", "x"


def _summary(machine: SpallocMachine, boards: dict[tuple[int, int, int], Any]) -> dict[str, Any]:
    dead = dead_triads(machine)
    jobs = sorted({int(b["job-id"]) for b in boards.values() if b and "job-id" in b})
    in_use = sum(1 for b in boards.values() if b and "job-id" in b)
    return {
        "name": machine.name,
        "tags": sorted(machine.tags),
        "width": machine.width,
        "height": machine.height,
        "triads": machine.width * machine.height,
        "boards": 3 * machine.width * machine.height - len(dead),
        "boards_in_use": in_use,
        "dead_boards": len(dead),
        "dead_links": len(machine.dead_links),
        "jobs": jobs,
    }


@click.command()
@click.argument("name", required=False)
@service_options
@json_option
def machines(
    name: str | None,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """List the machines, or show a map of machine NAME with each job's boards."""
    client, settings = connect(url, username, password, token)
    with client, client_errors(settings.url):
        if name is not None:
            _show_machine(client, name, as_json)
            return
        found = client.list_machines()
        summaries = [_summary(m, board_map(client, m)) for _, m in sorted(found.items())]
    if as_json:
        print_json(summaries)
        return
    print_table(
        None,
        ["Name", "Boards", "Triads (WxH)", "Tags", "In use", "Dead boards", "Jobs"],
        [
            [
                s["name"],
                s["boards"],
                f"{s['width']}x{s['height']}",
                ", ".join(s["tags"]),
                s["boards_in_use"],
                s["dead_boards"],
                len(s["jobs"]),
            ]
            for s in summaries
        ],
    )


def _show_machine(client: SpallocClient, name: str, as_json: bool) -> None:
    machine = find_machine(client, name)
    boards = board_map(client, machine)
    summary = _summary(machine, boards)
    owners: dict[int, str | None] = {}
    job_boards: dict[int, int] = {}
    for found in boards.values():
        if found and "job-id" in found:
            job_boards[int(found["job-id"])] = job_boards.get(int(found["job-id"]), 0) + 1
    for job_id in job_boards:
        owners[job_id] = _owner(client, job_id)
    letters = {job_id: LETTERS[i % len(LETTERS)] for i, job_id in enumerate(sorted(job_boards))}
    if as_json:
        summary["boards_detail"] = [
            {
                "x": t[0],
                "y": t[1],
                "z": t[2],
                "dead": found is None,
                "physical": None if found is None else found.get("physical-board-coordinates"),
                "chip": None if found is None else found.get("board-chip"),
                "job_id": None if found is None else found.get("job-id"),
            }
            for t, found in sorted(boards.items())
        ]
        summary["jobs"] = [
            {"id": j, "key": letters[j], "boards": n, "owner": owners[j]}
            for j, n in sorted(job_boards.items())
        ]
        print_json(summary)
        return
    console.print(
        f"[bold]{machine.name}[/]  tags: {', '.join(sorted(machine.tags)) or '-'}  "
        f"size: {machine.width}x{machine.height} triads, {summary['boards']} boards  "
        f"in use: {summary['boards_in_use']}  dead: {summary['dead_boards']}"
    )
    console.print()
    for line in render_map(machine, boards, letters):
        console.print(line, highlight=False)
    console.print()
    console.print(
        f"[dim]{FREE} free   {DEAD} dead or absent   letters: jobs   "
        "(triad rows y on the left, columns x below; each triad is boards 0, 1, 2 bottom-up)[/]"
    )
    if job_boards:
        print_table(
            None,
            ["Key", "Job ID", "Boards", "Owner"],
            [
                [_colour(letters[j], j, letters), j, n, owners[j]]
                for j, n in sorted(job_boards.items())
            ],
        )


def _owner(client: SpallocClient, job_id: int) -> str | None:
    """The owner of a job, when the user may see it."""
    from pyspalloc.cli.common import get_json, job_url
    from pyspalloc.client import SpallocHTTPError

    try:
        state = get_json(client.session, job_url(client, job_id))
    except SpallocHTTPError:
        return None
    return None if state is None else state.get("owner")


def _colour(letter: str, job_id: int, letters: dict[int, str]) -> str:
    index = sorted(letters).index(job_id)
    colour = COLOURS[index % len(COLOURS)]
    return f"[bold {colour}]{letter}[/]"


def render_map(
    machine: SpallocMachine,
    boards: dict[tuple[int, int, int], Any],
    letters: dict[int, str],
) -> list[str]:
    """Draw the boards as a hexagonal grid, one character per board (rich markup).

    Each triad is three rows: board 0 at the bottom, board 1 up and to the right
    (north-east), board 2 above board 0 (as on the chip grid, where their Ethernet chips
    are at (0, 0), (8, 4) and (4, 8) of the triad). Columns follow the triad's x and
    rows go north (top) to south, so within a triad neighbouring boards touch.
    """
    rows = 3 * machine.height
    columns = 6 * machine.width
    grid: list[list[str]] = [[" "] * columns for _ in range(rows)]
    dead = dead_triads(machine)
    for x, y, z in all_triads(machine):
        column = 6 * x + (0, 3, 0)[z]
        row = 3 * y + z
        found = boards.get((x, y, z))
        if (x, y, z) in dead or found is None:
            cell = f"[red]{DEAD}[/]"
        elif "job-id" in found:
            job_id = int(found["job-id"])
            cell = _colour(letters.get(job_id, "?"), job_id, letters)
        else:
            cell = f"[dim]{FREE}[/]"
        grid[row][column] = cell
    lines = [
        (f"{row // 3:>3} " if row % 3 == 0 else "    ") + "".join(grid[row]).rstrip()
        for row in reversed(range(rows))
    ]
    axis = "".join(f"{x:<6}" for x in range(machine.width)).rstrip()
    return [*lines, f"[dim]y/x {axis}[/]"]
