"""Site administration shared by the admin REST API and the admin web pages.

One implementation, two front ends: each function changes the store and tells the
running service (lifecycle, events, password cache) what changed, and raises
:class:`~pyspalloc.server.api.common.ApiError` (a 4xx with a message) when it refuses.
The callers check the ADMIN role and write the audit log.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pyspalloc.exceptions import SpinnmanInvalidParameterException
from pyspalloc.geometry import MachineDefinition, parse_machine_definitions
from pyspalloc.server.api.common import ApiError
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import (
    BoardInfo,
    GroupInUse,
    MachineInfo,
    TrustLevel,
    UserInfo,
    UserInUse,
)
from pyspalloc.server.store import web_queries as wq

#: most machines one import may define, and most boards in all of them
MAX_IMPORT_MACHINES = 16
MAX_IMPORT_BOARDS = 10_000
#: the longest tag, and most tags a machine may have
MAX_TAG = 128
MAX_TAGS = 32
MIN_PASSWORD = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
#: what :func:`valid_name` accepts, in words
NAME_RULE = "1-128 letters, digits or _.@+- starting with a letter or digit"


def valid_name(name: str) -> bool:
    """Whether ``name`` may name a new user or group."""
    return bool(_NAME.match(name))


# ---- machines -------------------------------------------------------------------
def parse_import(document: Any) -> list[MachineDefinition]:
    """Read machine definitions in the Java server's JSON format (400 if bad)."""
    if not isinstance(document, dict):
        raise ApiError(400, "a machine definition document must be a JSON object")
    try:
        machines = parse_machine_definitions(document)
    except (ValueError, KeyError, TypeError, SpinnmanInvalidParameterException) as error:
        raise ApiError(400, f"bad machine definition: {error}") from None
    if not machines:
        raise ApiError(400, "bad machine definition: no machines")
    if len(machines) > MAX_IMPORT_MACHINES:
        raise ApiError(400, f"at most {MAX_IMPORT_MACHINES} machines per import")
    if sum(len(m.boards) for m in machines) > MAX_IMPORT_BOARDS:
        raise ApiError(400, f"at most {MAX_IMPORT_BOARDS} boards per import")
    return machines


def _addresses(machine: MachineDefinition) -> set[str]:
    """The board and BMP addresses of a machine."""
    found = {b.ip for b in machine.boards.values() if b.ip}
    return found | set(machine.bmp_ips.values())


def import_machines(ctx: ServiceContext, machines: list[MachineDefinition]) -> list[MachineInfo]:
    """Add machines to the running service: stored, allocated and powered from now on.

    Refused (409) if a machine of the same name is being served already, or one of its
    board or BMP addresses is another served machine's. A machine
    without tags gets the tag ``default``, as in the configuration.
    """
    used = {ip: m.name for m in ctx.machines.values() for ip in _addresses(m)}
    for machine in machines:
        if machine.name in ctx.machines:
            raise ApiError(409, f"machine {machine.name} exists already")
        for ip in _addresses(machine):
            if ip in used:
                raise ApiError(409, f"address {ip} of {machine.name} is used by {used[ip]}")
    done: list[MachineInfo] = []
    for machine in machines:
        if not machine.tags:
            machine = dataclasses.replace(machine, tags=("default",))
        info = ctx.store.sync_machine(machine)
        ctx.lifecycle.add_machine(machine, info.id, ctx.config.off_wait_for("import:"))
        done.append(info)
    ctx.events.notify("machines")
    return done


def machine_named(ctx: ServiceContext, name: str) -> MachineInfo:
    """Return a machine in or out of service, or 404."""
    info = wq.machine_by_name(ctx.store, name)
    if info is None:
        raise ApiError(404, "no such machine")
    return info


def set_machine_in_service(ctx: ServiceContext, name: str, in_service: bool) -> MachineInfo:
    """Take a whole machine into or out of service (no new jobs; jobs already on it,
    queued or running, go on)."""
    machine_named(ctx, name)
    if in_service and name not in ctx.machines:
        raise ApiError(409, f"machine {name} is not defined in this run: import it first")
    info = ctx.store.set_machine_in_service(name, in_service)
    if info is None:
        raise ApiError(404, "no such machine")
    ctx.events.notify("machines", ("machine", name))
    if in_service:
        ctx.lifecycle.wake()
    return info


def parse_tags(value: Any) -> list[str]:
    """Check a list of tags (400 naming the problem)."""
    if not isinstance(value, list) or not value:
        raise ApiError(400, "tags must be a non-empty list of strings")
    tags: list[str] = []
    for tag in value:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG:
            raise ApiError(400, f"each tag must be a non-blank string of at most {MAX_TAG} chars")
        if tag.strip() not in tags:
            tags.append(tag.strip())
    if len(tags) > MAX_TAGS:
        raise ApiError(400, f"at most {MAX_TAGS} tags")
    return tags


def retag_machine(ctx: ServiceContext, name: str, tags: list[str]) -> MachineInfo:
    """Replace a machine's tags (new jobs asking for tags see them at once)."""
    info = ctx.store.retag_machine(name, tags)
    if info is None:
        raise ApiError(404, "no such machine")
    ctx.events.notify("machines", ("machine", name))
    return info


def set_board_enabled(ctx: ServiceContext, board: BoardInfo, enabled: bool) -> BoardInfo:
    """Take one board into or out of service (a job holding it keeps it)."""
    changed = wq.set_board_functioning(ctx.store, board.id, enabled)
    if changed is None:
        raise ApiError(404, "no such board")
    machine = ctx.store.machine_by_id(board.machine_id)
    if machine is not None:
        ctx.events.notify(("machine", machine.name))
    if enabled:
        ctx.lifecycle.wake()
    return changed


# ---- users ------------------------------------------------------------------------
def user_by_id(ctx: ServiceContext, user_id: int) -> UserInfo:
    """Return a user, or 404."""
    user = ctx.store.get_user_by_id(user_id)
    if user is None:
        raise ApiError(404, "no such user")
    return user


def check_password(password: str) -> str:
    """Refuse (400) a password that is too short."""
    if len(password) < MIN_PASSWORD:
        raise ApiError(400, f"passwords must have at least {MIN_PASSWORD} characters")
    return password


def update_user(
    ctx: ServiceContext,
    user: UserInfo,
    *,
    acting_id: int,
    acting_session: str | None = None,
    password: str | None = None,
    enabled: bool | None = None,
    role: TrustLevel | None = None,
) -> UserInfo:
    """Change a user's password, enabled flag or role.

    A new password or disabling ends the user's sessions (but ``acting_session``, when an
    admin changes their own password) and forgets their verified password; admins cannot
    disable themselves or take away their own ADMIN role (400).
    """
    myself = user.id == acting_id
    if myself and enabled is False:
        raise ApiError(400, "you cannot disable your own account")
    if myself and role is not None and role < TrustLevel.ADMIN:
        raise ApiError(400, "you cannot take away your own admin role")
    password_hash = None
    if password is not None:
        password_hash = ctx.auth.new_password_hash(check_password(password))
    changed = ctx.store.update_user(
        user.name,
        password_hash=password_hash,
        disabled=None if enabled is None else not enabled,
        trust=role,
        keep_session=acting_session if myself else None,
    )
    if changed is None:
        raise ApiError(404, "no such user")
    if password is not None:
        wq.unlock_user(ctx.store, user.id)
    if password is not None or enabled is not None or role is not None:
        ctx.auth.verified.forget(user.id)
    return ctx.store.get_user_by_id(user.id) or changed


def unlock_user(ctx: ServiceContext, user: UserInfo) -> None:
    """Clear a user's failed-login count and lock."""
    wq.unlock_user(ctx.store, user.id)


def delete_user(ctx: ServiceContext, user_id: int, acting_id: int) -> str:
    """Delete a user (their sessions end); 400 for oneself, 409 if they own jobs."""
    if user_id == acting_id:
        raise ApiError(400, "you cannot delete your own account")
    try:
        name = ctx.store.delete_user(user_id)
    except UserInUse as error:
        raise ApiError(409, str(error)) from None
    if name is None:
        raise ApiError(404, "no such user")
    ctx.auth.verified.forget(user_id)
    return name


# ---- groups -----------------------------------------------------------------------
def group_by_id(ctx: ServiceContext, group_id: int) -> wq.GroupInfo:
    """Return a group, or 404."""
    group = wq.get_group(ctx.store, group_id)
    if group is None:
        raise ApiError(404, "no such group")
    return group


def set_quota(ctx: ServiceContext, group_id: int, quota: float | None) -> wq.GroupInfo:
    """Set a group's quota in board-seconds (None: unlimited); 400 if negative."""
    if quota is not None and quota < 0:
        raise ApiError(400, "the quota must not be negative")
    group = group_by_id(ctx, group_id)
    if not ctx.store.set_group_quota(group.name, quota):
        raise ApiError(404, "no such group")
    return group_by_id(ctx, group_id)


def delete_group(ctx: ServiceContext, group_id: int) -> str:
    """Delete a group and its memberships; 409 if jobs are accounted to it."""
    try:
        name = ctx.store.delete_group(group_id)
    except GroupInUse as error:
        raise ApiError(409, f"{error}; set its quota instead") from None
    if name is None:
        raise ApiError(404, "no such group")
    return name
