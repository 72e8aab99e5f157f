"""``pyspalloc admin``: run a site over the admin REST API (ADMIN users only).

Users, groups and their quotas, boards, machines and board reports of a remote service,
with the usual ``--url``/``--user``/``--password``/``--token`` and ``--json``; nothing here
needs the service's database file (that is ``pyspalloc user``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pyspalloc.cli.errors import CLIError, client_errors
from pyspalloc.cli.options import connect, json_option, service_options
from pyspalloc.cli.output import console, print_fields, print_json, print_table
from pyspalloc.client.admin import AdminClient

ROLES = ("READER", "USER", "ADMIN")


def _command(group: click.Group, name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """Make ``fn(admin, as_json, **options)`` a sub-command of ``group`` with the service
    options and ``--json``; it gets a logged-in :class:`AdminClient`."""

    def decorate(fn: Callable[..., Any]) -> click.Command:
        @functools.wraps(fn)
        def run(
            url: str | None,
            username: str | None,
            password: str | None,
            token: str | None,
            as_json: bool,
            **options: Any,
        ) -> None:
            client, settings = connect(url, username, password, token)
            with client_errors(settings.url):
                fn(client.admin(), as_json, **options)

        return group.command(name)(json_option(service_options(run)))

    return decorate


def _show(as_json: bool, value: Any, fields: dict[str, Any] | None = None) -> None:
    if as_json:
        print_json(value)
    elif fields is not None:
        print_fields(fields)
    else:
        console.print(str(value))


def _triple(text: str | None, what: str) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        a, b, c = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{what} is three integers like 0,1,2") from None
    return (a, b, c)


def _hours(seconds: Any) -> str:
    return "unlimited" if seconds is None else f"{float(seconds) / 3600:g} board-hours"


@click.group()
def admin() -> None:
    """Administer a remote service (ADMIN role): users, groups, boards, machines, reports."""


# ---- users --------------------------------------------------------------------------
@admin.group()
def users() -> None:
    """Local users: list, add, show, set-role, enable, disable, password, delete."""


def _user_fields(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["userId"], "name": record["userName"], "role": record["trustLevel"],
        "enabled": record["enabled"], "locked": record["locked"],
        "groups": ", ".join(sorted(record.get("groups", {}))) or None,
    }  # fmt: skip


@_command(users, "list")
def users_list(admin: AdminClient, as_json: bool) -> None:
    """List the users."""
    listing = admin.list_users()
    records = [admin.get_user(url.rsplit("/", 1)[-1]) for url in listing.values()]
    if as_json:
        print_json(records)
        return
    rows = [list(_user_fields(r).values()) for r in records]
    print_table(None, ["id", "name", "role", "enabled", "locked", "groups"], rows)


_PASSWORD = click.option(
    "--set-password", "new_password", prompt="New password", hide_input=True,
    confirmation_prompt=True, help="The user's password (prompted for if not given).",
)  # fmt: skip


@_command(users, "add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES, case_sensitive=False), default="USER")
@click.option("--disabled", is_flag=True, help="Create the account disabled.")
@_PASSWORD
def users_add(
    admin: AdminClient, as_json: bool, name: str, role: str, disabled: bool, new_password: str
) -> None:
    """Create user NAME (and their personal group)."""
    record = admin.create_user(name, new_password, role.upper(), not disabled)
    _show(as_json, record, _user_fields(record))


@_command(users, "show")
@click.argument("user")
def users_show(admin: AdminClient, as_json: bool, user: str) -> None:
    """Show USER (a name or id)."""
    record = admin.get_user(user)
    _show(as_json, record, _user_fields(record))


@_command(users, "set-role")
@click.argument("user")
@click.argument("role", type=click.Choice(ROLES, case_sensitive=False))
def users_set_role(admin: AdminClient, as_json: bool, user: str, role: str) -> None:
    """Give USER the ROLE (READER, USER or ADMIN)."""
    record = admin.update_user(user, trustLevel=role.upper())
    _show(as_json, record, _user_fields(record))


@_command(users, "enable")
@click.argument("user")
def users_enable(admin: AdminClient, as_json: bool, user: str) -> None:
    """Enable USER (and clear a login lock-out)."""
    record = admin.update_user(user, enabled=True, locked=False)
    _show(as_json, record, _user_fields(record))


@_command(users, "disable")
@click.argument("user")
def users_disable(admin: AdminClient, as_json: bool, user: str) -> None:
    """Disable USER: their sessions end at once."""
    record = admin.update_user(user, enabled=False)
    _show(as_json, record, _user_fields(record))


@_command(users, "password")
@click.argument("user")
@_PASSWORD
def users_password(admin: AdminClient, as_json: bool, user: str, new_password: str) -> None:
    """Set USER's password: their sessions end at once."""
    record = admin.update_user(user, password=new_password)
    _show(as_json, record, _user_fields(record))


@_command(users, "delete")
@click.argument("user")
def users_delete(admin: AdminClient, as_json: bool, user: str) -> None:
    """Delete USER (refused while they own jobs: disable them instead)."""
    message = admin.delete_user(user)
    _show(as_json, {"message": message} if as_json else message)


# ---- groups -------------------------------------------------------------------------
@admin.group()
def groups() -> None:
    """Groups and quotas: list, add, show, quota, delete, add-member, remove-member."""


def _group_fields(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["groupId"], "name": record["groupName"], "quota": _hours(record["quota"]),
        "members": ", ".join(sorted(record.get("members", {}))) or None,
    }  # fmt: skip


def _quota(hours: str) -> float | None:
    if hours.lower() in ("none", "unlimited"):
        return None
    try:
        value = float(hours)
    except ValueError:
        raise click.BadParameter("a number of board-hours, or 'unlimited'") from None
    if value < 0:
        raise click.BadParameter("the quota must not be negative")
    return value * 3600.0


@_command(groups, "list")
def groups_list(admin: AdminClient, as_json: bool) -> None:
    """List the groups with their quotas and members."""
    records = [admin.get_group(url.rsplit("/", 1)[-1]) for url in admin.list_groups().values()]
    if as_json:
        print_json(records)
        return
    rows = [list(_group_fields(r).values()) for r in records]
    print_table(None, ["id", "name", "quota", "members"], rows)


@_command(groups, "add")
@click.argument("name")
@click.option("--quota", "hours", default="unlimited", help="Board-hours, or 'unlimited'.")
def groups_add(admin: AdminClient, as_json: bool, name: str, hours: str) -> None:
    """Create group NAME."""
    record = admin.create_group(name, _quota(hours))
    _show(as_json, record, _group_fields(record))


@_command(groups, "show")
@click.argument("group")
def groups_show(admin: AdminClient, as_json: bool, group: str) -> None:
    """Show GROUP (a name or id)."""
    record = admin.get_group(group)
    _show(as_json, record, _group_fields(record))


@_command(groups, "quota")
@click.argument("group")
@click.argument("hours")
def groups_quota(admin: AdminClient, as_json: bool, group: str, hours: str) -> None:
    """Set GROUP's quota to HOURS board-hours (or 'unlimited')."""
    record = admin.set_quota(group, _quota(hours))
    _show(as_json, record, _group_fields(record))


@_command(groups, "delete")
@click.argument("group")
def groups_delete(admin: AdminClient, as_json: bool, group: str) -> None:
    """Delete GROUP (refused while jobs are accounted to it)."""
    message = admin.delete_group(group)
    _show(as_json, {"message": message} if as_json else message)


@_command(groups, "add-member")
@click.argument("group")
@click.argument("user")
def groups_add_member(admin: AdminClient, as_json: bool, group: str, user: str) -> None:
    """Add USER to GROUP."""
    record = admin.add_member(group, user)
    _show(as_json, record if as_json else f"{record['userName']} joined {record['groupName']}")


@_command(groups, "remove-member")
@click.argument("group")
@click.argument("user")
def groups_remove_member(admin: AdminClient, as_json: bool, group: str, user: str) -> None:
    """Remove USER from GROUP."""
    admin.remove_member(group, user)
    _show(as_json, {"group": group, "removed": user} if as_json else f"{user} left {group}")


# ---- boards -------------------------------------------------------------------------
@admin.group()
def boards() -> None:
    """One board: show, enable, disable (by --triad, --physical or --ip)."""


def _board_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--ip", "address", default=None, help="The board's IP address.")(fn)
    fn = click.option("--physical", default=None, help="cabinet,frame,board")(fn)
    fn = click.option("--triad", default=None, help="x,y,z")(fn)
    return click.argument("machine")(fn)


def _board(
    admin: AdminClient,
    as_json: bool,
    machine: str,
    triad: str | None,
    physical: str | None,
    address: str | None,
    enable: bool | None,
) -> None:
    if sum(v is not None for v in (triad, physical, address)) != 1:
        raise CLIError("name the board with exactly one of --triad, --physical or --ip")
    where: dict[str, Any] = {
        "triad": _triple(triad, "--triad"), "physical": _triple(physical, "--physical"),
        "address": address,
    }  # fmt: skip
    if enable is None:
        state = admin.board_enabled(machine, **where)
    else:
        state = admin.set_board_enabled(machine, enable, **where)
    label = triad or physical or address
    if as_json:
        print_json({"machine": machine, "board": label, "enabled": state})
    else:
        console.print(f"{machine} {label}: {'in service' if state else 'out of service'}")


@_command(boards, "show")
@_board_options
def boards_show(admin: AdminClient, as_json: bool, **where: Any) -> None:
    """Whether a board of MACHINE is in service."""
    _board(admin, as_json, enable=None, **where)


@_command(boards, "enable")
@_board_options
def boards_enable(admin: AdminClient, as_json: bool, **where: Any) -> None:
    """Put a board of MACHINE back into service."""
    _board(admin, as_json, enable=True, **where)


@_command(boards, "disable")
@_board_options
def boards_disable(admin: AdminClient, as_json: bool, **where: Any) -> None:
    """Take a board of MACHINE out of service (a job holding it keeps it)."""
    _board(admin, as_json, enable=False, **where)


# ---- machines -----------------------------------------------------------------------
@admin.group()
def machines() -> None:
    """Machines: list, import FILE, in-service, out-of-service, retag."""


def _machine_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [m["name"], ", ".join(m["tags"]), m.get("boards"), m.get("boards-in-use"),
         m.get("boards-out-of-service"), m.get("live-jobs"), m["in-service"]]
        for m in records
    ]  # fmt: skip


_MACHINE_COLUMNS = ["name", "tags", "boards", "in use", "out of service", "jobs", "in service"]


@_command(machines, "list")
def machines_list(admin: AdminClient, as_json: bool) -> None:
    """Every machine, in service or not."""
    records = admin.list_machines()
    if as_json:
        print_json(records)
    else:
        print_table(None, _MACHINE_COLUMNS, _machine_rows(records))


@_command(machines, "import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def machines_import(admin: AdminClient, as_json: bool, file: Path) -> None:
    """Add the machines defined in FILE (the Java server's JSON format) to the running
    service (until it restarts: name FILE with serve --machine to keep them)."""
    try:
        document = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise CLIError(f"cannot read {file}: {error}") from None
    records = admin.import_machines(document)
    if as_json:
        print_json(records)
    else:
        console.print("imported " + ", ".join(m["name"] for m in records))


@_command(machines, "in-service")
@click.argument("machine")
def machines_in_service(admin: AdminClient, as_json: bool, machine: str) -> None:
    """Put MACHINE back into service."""
    state = admin.set_in_service(machine, True)
    _show(
        as_json, {"machine": machine, "in-service": state} if as_json else f"{machine}: in service"
    )


@_command(machines, "out-of-service")
@click.argument("machine")
def machines_out_of_service(admin: AdminClient, as_json: bool, machine: str) -> None:
    """Take MACHINE out of service: no new jobs; jobs already on it go on."""
    state = admin.set_in_service(machine, False)
    _show(
        as_json,
        {"machine": machine, "in-service": state} if as_json else f"{machine}: out of service",
    )


@_command(machines, "retag")
@click.argument("machine")
@click.argument("tags", nargs=-1, required=True)
def machines_retag(admin: AdminClient, as_json: bool, machine: str, tags: tuple[str, ...]) -> None:
    """Replace MACHINE's tags with TAGS."""
    record = admin.retag(machine, list(tags))
    _show(as_json, record if as_json else f"{machine}: tags {', '.join(record['tags'])}")


# ---- board reports ------------------------------------------------------------------
@admin.group()
def reports() -> None:
    """Board problem reports: list, clear."""


@_command(reports, "list")
def reports_list(admin: AdminClient, as_json: bool) -> None:
    """Every board report, newest first."""
    records = admin.board_reports()
    if as_json:
        print_json(records)
        return
    rows = [
        [r["id"], r["board-id"], r["machine"], ",".join(str(v) for v in r["board"]), r["job-id"],
         r["reporter"], r["time"], r["issue"]]
        for r in records
    ]  # fmt: skip
    print_table(None, ["id", "board id", "machine", "board", "job", "by", "time", "issue"], rows)


@_command(reports, "clear")
@click.argument("board_id", type=int)
def reports_clear(admin: AdminClient, as_json: bool, board_id: int) -> None:
    """Forget the reports of board BOARD_ID (its id in reports list)."""
    cleared = admin.clear_board_reports(board_id)
    _show(as_json, {"board-id": board_id, "cleared": cleared} if as_json else f"cleared {cleared}")
