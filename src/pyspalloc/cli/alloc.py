"""``pyspalloc alloc``: create a job, wait until it is ready, hold it, destroy it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from types import FrameType

import click

from pyspalloc.cli.errors import EXIT_DESTROYED, EXIT_INTERRUPTED, client_errors
from pyspalloc.cli.lookup import describe_job
from pyspalloc.cli.options import connect, json_option, service_options
from pyspalloc.cli.output import console, error_console, print_fields, print_json, print_table
from pyspalloc.cli.views import connection_rows, job_json
from pyspalloc.cli.waiting import state_progress, wait_for_ready
from pyspalloc.client import JobDescription, SpallocClient, SpallocJob

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class Request:
    """What to allocate, from the command line (checked before logging in)."""

    num_boards: int | None = None
    rectangle: tuple[int, int] | None = None
    triad: Triple | None = None
    physical: Triple | None = None
    ip: str | None = None
    max_dead_boards: int | None = None

    @property
    def has_board(self) -> bool:
        """Whether a specific board is named."""
        return self.triad is not None or self.physical is not None or self.ip is not None


def parse_request(
    numbers: tuple[int, ...],
    triad: Triple | None = None,
    physical: Triple | None = None,
    ip: str | None = None,
    rect_at: tuple[int, int] | None = None,
    max_dead_boards: int | None = None,
) -> Request:
    """Turn the arguments into a :class:`Request`; :class:`click.UsageError` if they clash."""
    if sum(b is not None for b in (triad, physical, ip)) > 1:
        raise click.UsageError("give at most one of --triad, --physical and --ip")
    if len(numbers) > 3:
        raise click.UsageError("give at most three numbers: N, W H, or X Y Z")
    if len(numbers) == 3:  # the old spalloc's "X Y Z": one specific board
        if triad is not None or physical is not None or ip is not None:
            raise click.UsageError("X Y Z already names a board")
        triad, numbers = (numbers[0], numbers[1], numbers[2]), ()
    if len(numbers) == 2:
        if rect_at is not None:
            raise click.UsageError("give the rectangle either as W H or with --rect-at")
        rect_at, numbers = (numbers[0], numbers[1]), ()
    if any(n < 1 for n in numbers + (rect_at or ())):
        raise click.UsageError("sizes must be at least 1")
    request = Request(
        num_boards=numbers[0] if numbers else None,
        rectangle=rect_at,
        triad=triad,
        physical=physical,
        ip=ip,
        max_dead_boards=max_dead_boards,
    )
    if max_dead_boards is not None and not (rect_at and request.has_board):
        raise click.UsageError("--max-dead-boards applies to a rectangle at a board")
    if request.num_boards is not None and request.has_board:
        raise click.UsageError("a number of boards cannot be combined with a board")
    return request


def _create(
    client: SpallocClient, request: Request, machine: str | None, keepalive: int
) -> SpallocJob:
    """Create the job the request describes."""
    r = request
    if r.rectangle is not None and r.has_board:
        return client.create_job_rect_at_board(
            r.rectangle[0],
            r.rectangle[1],
            triad=r.triad,
            physical=r.physical,
            ip_address=r.ip,
            machine_name=machine,
            keepalive=keepalive,
            max_dead_boards=r.max_dead_boards or 0,
        )
    if r.rectangle is not None:
        return client.create_job_rect(r.rectangle[0], r.rectangle[1], machine, keepalive)
    if r.has_board:
        return client.create_job_board(r.triad, r.physical, r.ip, machine, keepalive)
    return client.create_job(r.num_boards or 1, machine, keepalive)


def substitute(command: str, view: JobDescription, ethernet_ips: str) -> str:
    """Fill the old spalloc's ``{hostname}``-style fields into a shell command."""
    root = view.root_host or ""
    values = {
        "": root,
        "hostname": root,
        "id": str(view.id),
        "w": str(view.width),
        "width": str(view.width),
        "h": str(view.height),
        "height": str(view.height),
        "ethernet_ips": ethernet_ips,
        "machine": view.machine or "",
        "url": view.url,
    }
    for key, value in values.items():
        command = command.replace("{" + key + "}", shlex.quote(value) if value else "''")
    return command


def _write_ethernet_ips(view: JobDescription) -> str:
    handle, path = tempfile.mkstemp(prefix=f"spalloc-job-{view.id}-", suffix=".csv")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        for x, y, host in view.connections:
            out.write(f"{x},{y},{host}\n")
    return path


def _show(view: JobDescription, as_json: bool, hold: bool) -> None:
    if as_json:
        print_json(job_json(view))
        sys.stdout.flush()
        return
    print_fields(
        {
            "Job ID": view.id,
            "Hostname": view.root_host,
            "Machine": view.machine,
            "Size (triads)": f"{view.width} x {view.height} (depth {view.depth})",
            "Boards": view.num_boards,
        }
    )
    print_table(
        "Connections",
        ["Chip (x, y)", "Hostname", "Board (x, y, z)"],
        connection_rows(view),
    )
    if hold:
        console.print("[dim]Keeping the job alive; press Ctrl-C to destroy it.[/]")


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("numbers", nargs=-1, type=int)
@click.option("--triad", nargs=3, type=int, default=None, metavar="X Y Z", help="This board.")
@click.option(
    "--physical", nargs=3, type=int, default=None, metavar="C F B", help="This board (physical)."
)
@click.option("--ip", default=None, metavar="ADDRESS", help="The board with this IP address.")
@click.option(
    "--rect-at",
    nargs=2,
    type=int,
    default=None,
    metavar="W H",
    help="A W x H triad rectangle rooted at the board given by --triad, --physical or --ip.",
)
@click.option(
    "--max-dead-boards",
    type=int,
    default=None,
    help="Dead boards allowed in a rectangle at a board.",
)
@click.option("--machine", "-m", default=None, help="Machine name (default: tagged 'default').")
@click.option(
    "--group",
    "-g",
    default=None,
    help="Group the job is accounted to (needed by a member of several groups).",
)
@click.option(
    "--keepalive", type=int, default=60, show_default=True, help="Keepalive interval (s)."
)
@click.option(
    "--command",
    "-c",
    default=None,
    help="Run this shell command once READY, then destroy the job; {hostname}, {id}, "
    "{width}, {height}, {machine}, {ethernet_ips} (a CSV file) are filled in.",
)
@click.option("--no-destroy", is_flag=True, help="Leave the job alive on exit.")
@click.option("--timeout", type=float, default=None, help="Give up if not READY after this (s).")
@service_options
@json_option
def alloc(
    numbers: tuple[int, ...],
    triad: Triple | None,
    physical: Triple | None,
    ip: str | None,
    rect_at: tuple[int, int] | None,
    max_dead_boards: int | None,
    machine: str | None,
    group: str | None,
    keepalive: int,
    command: str | None,
    no_destroy: bool,
    timeout: float | None,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Allocate boards: nothing = 1 board, N = N boards, W H = W x H triads, X Y Z = a board.

    Waits until the job is READY, prints its connections, then keeps it alive until
    Ctrl-C (or until --command finishes) and destroys it. The exit code is the
    command's, when there is one.
    """
    request = parse_request(numbers, triad, physical, ip, rect_at, max_dead_boards)
    # `kill` destroys the job too, as Ctrl-C does
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code = _allocate(
            request, url, username, password, token, machine, group, keepalive, command,
            no_destroy, timeout, as_json,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(code)


def _allocate(
    request: Request,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    machine: str | None,
    group: str | None,
    keepalive: int,
    command: str | None,
    no_destroy: bool,
    timeout: float | None,
    as_json: bool,
) -> int:
    """Create the job, wait for it, use it, destroy it; return the exit code."""
    client, settings = connect(url, username, password, token, machine, group)
    with client, client_errors(settings.url):
        job = _create(client, request, settings.machine, keepalive)
        code = 0
        reason = "finished"
        quiet = False  # on errors, the error line is the only output on stderr
        try:
            view = _wait(job, as_json, timeout)
            _show(view, as_json, command is None)
            if command is not None:
                code = _run(command, view)
                reason = f"command exited with {code}"
            else:
                code = _hold(job)
                reason = "cancelled" if code == 0 else "destroyed"
        except KeyboardInterrupt:
            reason, code = "interrupted", EXIT_INTERRUPTED
            error_console.print("interrupted")
        except click.ClickException as error:
            reason, quiet = f"alloc failed: {error.message}"[:250], True
            raise
        except BaseException as error:
            reason, quiet = f"alloc failed: {type(error).__name__}"[:250], True
            raise
        finally:
            _finish(job, reason, no_destroy, as_json or quiet)
    return code


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait(job: SpallocJob, as_json: bool, timeout: float | None) -> JobDescription:
    with state_progress(job.job_id, enabled=not as_json) as on_state:
        return wait_for_ready(job, on_state, timeout)


def _run(command: str, view: JobDescription) -> int:
    csv = _write_ethernet_ips(view)
    try:
        line = substitute(command, view, csv)
        error_console.print(f"[dim]running: {line}[/]")
        sys.stdout.flush()
        return subprocess.call(line, shell=True)
    finally:
        os.unlink(csv)


def _hold(job: SpallocJob) -> int:
    """Wait until Ctrl-C (0) or until the job dies on its own (1)."""
    try:
        while True:
            time.sleep(1.0)
            view = describe_job(job, allocation=False)
            if view.state == "DESTROYED":
                reason = view.reason or "no reason given"
                error_console.print(f"job {view.id} was destroyed: {reason}")
                return EXIT_DESTROYED
    except KeyboardInterrupt:
        return 0


def _finish(job: SpallocJob, reason: str, no_destroy: bool, quiet: bool) -> None:
    """Destroy the job (or just stop keeping it alive, with ``no_destroy``)."""
    close = getattr(job, "close", None)
    if no_destroy:
        if callable(close):
            close()
        error_console.print(f"job {job.job_id} left alive (no keepalive from now on)")
        return
    try:
        job.destroy(reason)
    except Exception as error:  # the job may already be gone
        error_console.print(f"could not destroy job {job.job_id}: {error}")
        return
    if not quiet:
        error_console.print(f"job {job.job_id} destroyed ({reason})")
