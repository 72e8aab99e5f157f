"""``pyspalloc user``: manage the service's local users (works on the database directly)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pyspalloc.server.config import ServiceConfig, default_data_dir


def _db_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--database", default=None, help="SQLAlchemy URL (default: SQLite in the data dir)."
    )(fn)
    fn = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Service data directory [default: {default_data_dir()}].",
    )(fn)
    return fn


def _store(data_dir: Path | None, database: str | None) -> Any:
    from pyspalloc.server.store import Store

    config = ServiceConfig(data_dir=data_dir or default_data_dir(), database=database)
    if database is None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(config.database_url())


@click.group()
def user() -> None:
    """Add users, issue, list and revoke bearer tokens, list and disable users."""


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the user the ADMIN role.")
@click.option("--reader", is_flag=True, help="Only the READER role (cannot create jobs).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_db_options
def add(
    name: str,
    admin: bool,
    reader: bool,
    password_stdin: bool,
    data_dir: Path | None,
    database: str | None,
) -> None:
    """Create user NAME (asks for a password unless --password-stdin)."""
    from pyspalloc.server.auth import hash_password
    from pyspalloc.server.store import TrustLevel

    if admin and reader:
        raise click.UsageError("--admin and --reader exclude each other")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("the password must not be empty")
    trust = TrustLevel.ADMIN if admin else TrustLevel.READER if reader else TrustLevel.USER
    store = _store(data_dir, database)
    try:
        store.create_user(name, hash_password(password), trust)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    finally:
        store.close()
    click.echo(f"created {trust.name.lower()} {name}")


@user.command("token")
@click.argument("name")
@_db_options
def token(name: str, data_dir: Path | None, database: str | None) -> None:
    """Issue a new bearer token for NAME and print it (it is stored only hashed).

    Standard output holds only the token, on a line of its own, so scripts can read it.
    The token's id (for ``revoke-token``) goes to standard error when that is a terminal,
    and ``pyspalloc user tokens NAME`` lists it in any case.
    """
    from pyspalloc.server.auth import digest, new_secret

    store = _store(data_dir, database)
    try:
        found = store.get_user(name)
        if found is None:
            raise click.ClickException(f"no such user: {name}")
        secret = new_secret(32)
        token_id = store.add_token(found.id, digest(secret))
    finally:
        store.close()
    if click.get_text_stream("stderr").isatty():
        click.echo(
            f"token id {token_id} (revoke: pyspalloc user revoke-token {token_id})", err=True
        )
    click.echo(secret)


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + "Z"


@user.command("tokens")
@click.argument("name")
@_db_options
def tokens(name: str, data_dir: Path | None, database: str | None) -> None:
    """List the bearer tokens of NAME: id, when created and when revoked (UTC)."""
    from rich.console import Console
    from rich.table import Table

    store = _store(data_dir, database)
    try:
        found = store.get_user(name)
        if found is None:
            raise click.ClickException(f"no such user: {name}")
        issued = store.list_tokens(found.id)
    finally:
        store.close()
    table = Table("id", "created", "revoked")
    for t in issued:
        table.add_row(str(t.id), _when(t.created), _when(t.revoked))
    Console().print(table)


@user.command("revoke-token")
@click.argument("token_id", type=int)
@_db_options
def revoke_token(token_id: int, data_dir: Path | None, database: str | None) -> None:
    """Revoke the bearer token TOKEN_ID (see ``tokens``) and end sessions made from it."""
    store = _store(data_dir, database)
    try:
        revoked = store.revoke_token(token_id)
        owner = None if revoked is None else store.get_user_by_id(revoked.user_id)
    finally:
        store.close()
    if revoked is None:
        raise click.ClickException(f"no such token: {token_id}")
    click.echo(f"revoked token {token_id}" + ("" if owner is None else f" of {owner.name}"))


@user.command("list")
@_db_options
def list_users(data_dir: Path | None, database: str | None) -> None:
    """List the users."""
    from rich.console import Console
    from rich.table import Table

    store = _store(data_dir, database)
    try:
        users = store.list_users()
    finally:
        store.close()
    table = Table("name", "role", "enabled")
    for u in users:
        table.add_row(u.name, u.trust.name.lower(), "no" if u.disabled else "yes")
    Console().print(table)


@user.command("disable")
@click.argument("name")
@_db_options
def disable(name: str, data_dir: Path | None, database: str | None) -> None:
    """Disable user NAME (their sessions and tokens stop working)."""
    store = _store(data_dir, database)
    try:
        if store.update_user(name, disabled=True) is None:
            raise click.ClickException(f"no such user: {name}")
    finally:
        store.close()
    click.echo(f"disabled {name}")
