"""The options every client-side command shares, and the one place they become a client.

A command that talks to the service takes ``@service_options`` (and ``@json_option``),
then calls :func:`connect` and uses only the :class:`~pyspalloc.client.SpallocClient` it
returns, inside ``with client, client_errors(settings.url):``::

    client, settings = connect(url, username, password, token)
    with client, client_errors(settings.url):
        ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pyspalloc.cli.errors import CLIError, client_errors
from pyspalloc.cli.settings import ServiceSettings
from pyspalloc.client import SpallocClient

F = TypeVar("F", bound=Callable[..., Any])


def service_options(function: F) -> F:
    """Add ``--url``, ``--user``, ``--password`` and ``--token`` to a command."""
    function = click.option(
        "--token", default=None, help="Bearer token (or SPALLOC_TOKEN) instead of a password."
    )(function)
    function = click.option(
        "--password", default=None, help="Password (or SPALLOC_PASSWORD, or the config file)."
    )(function)
    function = click.option(
        "--user", "-u", "username", default=None, help="User name (or SPALLOC_USER)."
    )(function)
    function = click.option(
        "--url",
        default=None,
        metavar="URL",
        help="Service URL, e.g. http://host:8080/spalloc/ (or SPALLOC_SERVER).",
    )(function)
    return function


def json_option(function: F) -> F:
    """Add ``--json`` (machine-readable output) to a command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def connect(
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    machine: str | None = None,
    group: str | None = None,
) -> tuple[SpallocClient, ServiceSettings]:
    """Resolve the settings (options, environment, config file) and log in.

    ``group`` is the accounting group of the jobs the client creates.

    Raises
    ------
    CLIError
        If there are no credentials or the login fails.
    """
    settings = ServiceSettings.resolve(url, username, password, token, machine)
    if settings.username is None and settings.token is None and "@" not in settings.url:
        raise CLIError(
            "no credentials: use --user/--password or --token (or SPALLOC_USER, "
            "SPALLOC_PASSWORD, SPALLOC_TOKEN, or the config file)"
        )
    if settings.username is not None and settings.password is None:
        raise CLIError(f"no password for {settings.username}: use --password or SPALLOC_PASSWORD")
    with client_errors(settings.url):
        client = SpallocClient(
            settings.url,
            settings.username,
            settings.password,
            bearer_token=None if settings.username else settings.token,
            group=group,
        )
    return client, settings
