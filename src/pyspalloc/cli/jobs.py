"""``pyspalloc jobs`` (also ``ps``): list jobs."""

from __future__ import annotations

import click
from rich.table import Table

from pyspalloc.cli.errors import client_errors
from pyspalloc.cli.lookup import AllocationCache, describe_jobs
from pyspalloc.cli.options import connect, json_option, service_options
from pyspalloc.cli.output import console, make_table, print_json
from pyspalloc.cli.output import watch as watch_output
from pyspalloc.cli.views import age, job_json
from pyspalloc.client import JobDescription


@click.command()
@click.option("--deleted", is_flag=True, help="Include destroyed jobs.")
@click.option("--machine", "-m", default=None, help="Only jobs on this machine.")
@click.option("--owner", "-o", default=None, help="Only jobs of this owner.")
@click.option("--watch", "-w", is_flag=True, help="Redraw every --interval seconds until Ctrl-C.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="For --watch (s).")
@service_options
@json_option
def jobs(
    deleted: bool,
    machine: str | None,
    owner: str | None,
    watch: bool,
    interval: float,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """List the jobs you may see (all jobs for admins), newest first.

    Reading a job's boards counts as an access to it on the service (as with the Java
    Spalloc server), which refreshes its keepalive; --watch reads each job's boards once.
    """
    if watch and as_json:
        raise click.UsageError("--watch and --json do not go together")
    client, settings = connect(url, username, password, token)

    allocations: AllocationCache = {}

    def read() -> list[JobDescription]:
        views = describe_jobs(list(client.list_jobs(deleted=deleted)), cache=allocations)
        return [
            v
            for v in views
            if (machine is None or v.machine == machine) and (owner is None or v.owner == owner)
        ]

    with client, client_errors(settings.url):
        if watch:
            watch_output(lambda: _table(read()), interval)
            return
        views = read()
    if as_json:
        print_json([job_json(v) for v in views])
    else:
        console.print(_table(views))


def _table(views: list[JobDescription]) -> Table:
    return make_table(
        None,
        ["ID", "Owner", "State", "Boards", "Machine", "Age", "Keepalive host"],
        [
            [
                v.id,
                v.owner,
                v.state,
                v.num_boards or None,
                v.machine,
                age(v.start_time),
                v.keepalive_host,
            ]
            for v in views
        ],
    )
