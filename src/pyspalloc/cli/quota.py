"""``pyspalloc quota``: your groups' quotas, usage and what is left (``GET srv/groups``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from pyspalloc.cli.errors import client_errors
from pyspalloc.cli.options import connect, json_option, service_options
from pyspalloc.cli.output import print_json, print_table


def _hours(value: Any) -> str:
    return "unlimited" if value is None else f"{float(value) / 3600:.3f}"


@click.command()
@click.option("--all", "everything", is_flag=True, help="Every group (admins only).")
@click.option("--of", "of_user", metavar="USER", help="USER's groups (admins only).")
@service_options
@json_option
def quota(
    everything: bool,
    of_user: str | None,
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Show each group's quota, usage and what is left, in board-hours.

    With --json the amounts are board-seconds, as the service gives them (null quota
    and remaining: unlimited).
    """
    client, settings = connect(url, username, password, token)
    with client, client_errors(settings.url):
        groups = client.list_groups(everything, of_user)
    if as_json:
        print_json([dataclasses.asdict(g) for g in groups])
        return
    rows = [[g.name, g.type, _hours(g.quota), _hours(g.used), _hours(g.remaining)] for g in groups]
    print_table("Quotas (board-hours)", ["Group", "Type", "Quota", "Used", "Left"], rows)
