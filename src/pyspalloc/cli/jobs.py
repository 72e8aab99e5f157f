"""``pyspalloc jobs`` (also ``ps``): list jobs."""

from __future__ import annotations

import click

from pyspalloc.cli.common import (
    age,
    client_errors,
    connect,
    fetch_jobs,
    json_option,
    list_job_urls,
    service_options,
)
from pyspalloc.cli.output import print_json, print_table


@click.command()
@click.option("--deleted", is_flag=True, help="Include destroyed jobs.")
@click.option("--machine", "-m", default=None, help="Only jobs on this machine.")
@click.option("--owner", "-o", default=None, help="Only jobs of this owner.")
@service_options
@json_option
def jobs(
    deleted: bool,
    machine: str | None,
    owner: str | None,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """List the jobs you may see (all jobs for admins), newest first.

    Reading a job's boards counts as an access to it on the service (as with the Java
    Spalloc server), which refreshes its keepalive.
    """
    client, settings = connect(url, username, password, token)
    with client, client_errors(settings.url):
        views = fetch_jobs(client, list_job_urls(client, deleted=deleted))
    if machine is not None:
        views = [v for v in views if v.machine == machine]
    if owner is not None:
        views = [v for v in views if v.owner == owner]
    if as_json:
        print_json([v.to_json() for v in views])
        return
    print_table(
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
