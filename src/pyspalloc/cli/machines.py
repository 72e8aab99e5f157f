"""``pyspalloc machines [NAME]``: list the machines, or map one with its jobs."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from pyspalloc.cli.errors import client_errors
from pyspalloc.cli.lookup import all_triads, board_map, dead_triads, find_machine
from pyspalloc.cli.options import connect, json_option, service_options
from pyspalloc.cli.output import console, make_table, print_json
from pyspalloc.cli.output import watch as output_watch
from pyspalloc.client import SpallocClient, SpallocHTTPError, SpallocMachine

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
@click.option("--watch", "-w", is_flag=True, help="Redraw every --interval seconds until Ctrl-C.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="For --watch (s).")
@service_options
@json_option
def machines(
    name: str | None,
    watch: bool,
    interval: float,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """List the machines, or show a map of machine NAME with each job's boards."""
    if watch and as_json:
        raise click.UsageError("--watch and --json do not go together")
    client, settings = connect(url, username, password, token)
    with client, client_errors(settings.url):
        if name is not None:
            find_machine(client, name)

        def view() -> tuple[Any, RenderableType]:
            if name is None:
                return _list_view(client, spinner=not watch)
            return machine_view(client, find_machine(client, name), spinner=not watch)

        if watch:
            output_watch(lambda: view()[1], interval)
            return
        data, shown = view()
    if as_json:
        print_json(data)
    else:
        console.print(shown)


def _list_view(
    client: SpallocClient, spinner: bool = True
) -> tuple[list[dict[str, Any]], RenderableType]:
    found = client.list_machines()
    summaries = [_summary(m, board_map(m, spinner)) for _, m in sorted(found.items())]
    table = make_table(
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
    return summaries, table


def machine_view(
    client: SpallocClient, machine: SpallocMachine, spinner: bool = True
) -> tuple[dict[str, Any], RenderableType]:
    """The ``--json`` data and the drawing of one machine with its jobs."""
    boards = board_map(machine, spinner)
    summary = _summary(machine, boards)
    job_boards: dict[int, int] = {}
    for found in boards.values():
        if found and "job-id" in found:
            job_boards[int(found["job-id"])] = job_boards.get(int(found["job-id"]), 0) + 1
    owners = {job_id: _owner(client, job_id) for job_id in job_boards}
    letters = {job_id: LETTERS[i % len(LETTERS)] for i, job_id in enumerate(sorted(job_boards))}
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
    parts: list[RenderableType] = [
        Text.from_markup(
            f"[bold]{machine.name}[/]  tags: {', '.join(sorted(machine.tags)) or '-'}  "
            f"size: {machine.width}x{machine.height} triads, {summary['boards']} boards  "
            f"in use: {summary['boards_in_use']}  dead: {summary['dead_boards']}\n"
        ),
        *(Text.from_markup(line) for line in render_map(machine, boards, letters)),
        Text.from_markup(
            f"\n[dim]{FREE} free   {DEAD} dead or absent   letters: jobs   (triad rows y on the "
            "left, columns x below; each triad is boards 0, 1, 2 bottom-up)[/]"
        ),
    ]
    if job_boards:
        parts.append(
            make_table(
                None,
                ["Key", "Job ID", "Boards", "Owner"],
                [
                    [Text.from_markup(_colour(letters[j], j, letters)), j, n, owners[j]]
                    for j, n in sorted(job_boards.items())
                ],
            )
        )
    return summary, Group(*parts)


def _owner(client: SpallocClient, job_id: int) -> str | None:
    """The owner of a job, when the user may see it."""
    try:
        return client.get_job(job_id).describe(allocation=False).owner
    except SpallocHTTPError:
        return None


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
