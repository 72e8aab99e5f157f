"""Admin pages under ``/spalloc/system/admin``: users, groups and boards in service.

Every route needs the ADMIN role (others get 403); every form is CSRF-checked first.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server import administration as adm
from pyspalloc.server.api.admin.common import Id
from pyspalloc.server.api.common import ApiError
from pyspalloc.server.store import TrustLevel, UserInfo
from pyspalloc.server.store import web_queries as wq
from pyspalloc.server.web.support import (
    ADMIN,
    Viewer,
    actor,
    done,
    form_fields,
    html_errors,
    machine_picture,
    render,
    viewer,
)

router = APIRouter()

MIN_PASSWORD = adm.MIN_PASSWORD
ROLES = [t.name for t in TrustLevel]


def _admin(request: Request) -> Viewer:
    return viewer(request, TrustLevel.ADMIN)


def _audit(request: Request, who: Viewer, event: str, **fields: str | float | None) -> None:
    """Log an admin action (``user`` is the admin, ``address`` theirs)."""
    who.ctx.auth.audit(request, who.caller, event, **fields)


@router.get(ADMIN)
@html_errors
def admin_index(request: Request) -> Response:
    """Links to the admin pages."""
    who = _admin(request)
    machines = wq.machine_summaries(who.ctx.store, include_out_of_service=True)
    return render(request, who, "admin_index.html", machines=machines)


# ---- users --------------------------------------------------------------------------
def _users_page(
    request: Request, who: Viewer, status: int = 200, error: str | None = None
) -> Response:
    store = who.ctx.store
    users = store.list_users()
    groups = {u.id: wq.user_groups(store, u.id) for u in users}
    return render(
        request,
        who,
        "admin_users.html",
        status,
        error=error,
        users=users,
        groups=groups,
        roles=ROLES,
    )


@router.get(ADMIN + "/users")
@html_errors
def users(request: Request) -> Response:
    """All users with forms to enable, disable, set the role and reset the password."""
    return _users_page(request, _admin(request))


def _role(value: str) -> TrustLevel | None:
    try:
        return TrustLevel[value.upper()]
    except KeyError:
        return None


@html_errors
def _create_user(request: Request, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.ADMIN)
    name = form.get("username", "").strip()
    password = form.get("password", "")
    role = _role(form.get("role", "USER"))
    problem = None
    if not adm.valid_name(name):
        problem = "User names are 1-128 letters, digits or _.@+- and start with a letter or digit."
    elif len(password) < MIN_PASSWORD:
        problem = f"Passwords must have at least {MIN_PASSWORD} characters."
    elif role is None:
        problem = "Unknown role."
    if problem is None and role is not None:
        try:
            who.ctx.store.create_user(name, who.ctx.auth.new_password_hash(password), role)
        except ValueError:
            problem = f"There is already a user called {name}."
    if problem is not None:
        return _users_page(request, who, 400, problem)
    _audit(request, who, "user_created", target=name, role=role.name if role else None)
    return done(ADMIN + "/users", "user-created")


@router.post(ADMIN + "/users")
async def create_user(request: Request) -> Response:
    """Create a local user (username, password, role)."""
    form = await form_fields(request)
    return await run_in_threadpool(_create_user, request, form)


def _user_by_id(who: Viewer, user_id: Id) -> UserInfo:
    user = who.ctx.store.get_user_by_id(user_id)
    if user is None:
        raise ApiError(404, "no such user")
    return user


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


@html_errors
def _change_user(request: Request, user_id: Id, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.ADMIN)
    user = _user_by_id(who, user_id)
    action = form.get("action", "")
    ctx = who.ctx
    try:
        if action in ("enable", "disable"):
            adm.update_user(ctx, user, acting_id=who.user_id, enabled=action == "enable")
            _audit(request, who, f"user_{action}d", target=user.name)
            return done(ADMIN + "/users", f"user-{action}d")
        if action == "role":
            role = _role(form.get("role", ""))
            if role is None:
                return _users_page(request, who, 400, "Unknown role.")
            adm.update_user(ctx, user, acting_id=who.user_id, role=role)
            _audit(request, who, "user_role", target=user.name, role=role.name)
            return done(ADMIN + "/users", "user-role")
        if action == "password":
            adm.update_user(
                ctx, user, acting_id=who.user_id, acting_session=who.session.key,
                password=form.get("password", ""),
            )  # fmt: skip
            _audit(request, who, "user_password_reset", target=user.name)
            return done(ADMIN + "/users", "user-password")
        if action == "unlock":
            adm.unlock_user(ctx, user)
            _audit(request, who, "user_unlocked", target=user.name)
            return done(ADMIN + "/users", "user-unlocked")
        if action == "delete":
            adm.delete_user(ctx, user.id, who.user_id)
            _audit(request, who, "user_deleted", target=user.name)
            return done(ADMIN + "/users", "user-deleted")
    except ApiError as error:
        if error.status == 404:
            raise
        return _users_page(request, who, error.status, _sentence(error.message))
    raise ApiError(400, "unknown action")


@router.post(ADMIN + "/users/{user_id}")
async def change_user(request: Request, user_id: Id) -> Response:
    """Enable, disable, set the role of, reset the password of or unlock a user."""
    form = await form_fields(request)
    return await run_in_threadpool(_change_user, request, user_id, form)


# ---- groups -------------------------------------------------------------------------
def _groups_page(
    request: Request, who: Viewer, status: int = 200, error: str | None = None
) -> Response:
    groups = wq.list_groups(who.ctx.store)
    usage = {g.id: g for g in who.ctx.store.group_quotas(time.time())}
    return render(
        request, who, "admin_groups.html", status, error=error, groups=groups, usage=usage
    )


@router.get(ADMIN + "/groups")
@html_errors
def groups(request: Request) -> Response:
    """All groups, with a form to create one."""
    return _groups_page(request, _admin(request))


@html_errors
def _create_group(request: Request, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.ADMIN)
    name = form.get("name", "").strip()
    quota_text = form.get("quota", "").strip()
    quota: float | None = None
    if not adm.valid_name(name):
        return _groups_page(request, who, 400, "Group names are 1-128 letters, digits or _.@+-.")
    if quota_text:
        try:
            quota = float(quota_text) * 3600.0
        except ValueError:
            return _groups_page(request, who, 400, "The quota must be a number of board-hours.")
        if quota < 0:
            return _groups_page(request, who, 400, "The quota must not be negative.")
    try:
        group = wq.create_group(who.ctx.store, name, quota)
    except ValueError:
        return _groups_page(request, who, 400, f"There is already a group called {name}.")
    _audit(request, who, "group_created", group=name, quota=quota)
    return done(f"{ADMIN}/groups/{group.id}", "group-created")


@router.post(ADMIN + "/groups")
async def create_group(request: Request) -> Response:
    """Create a group (name, optional quota in board-hours)."""
    form = await form_fields(request)
    return await run_in_threadpool(_create_group, request, form)


def _group_page(
    request: Request, who: Viewer, group_id: Id, status: int = 200, error: str | None = None
) -> Response:
    store = who.ctx.store
    group = wq.get_group(store, group_id)
    if group is None:
        raise ApiError(404, "no such group")
    members = wq.group_members(store, group_id)
    others = [u.name for u in store.list_users() if u.name not in set(members)]
    return render(
        request,
        who,
        "admin_group.html",
        status,
        error=error,
        group=group,
        members=members,
        others=others,
        usage=next((g for g in store.group_quotas(time.time()) if g.id == group_id), None),
    )


@router.get(ADMIN + "/groups/{group_id}")
@html_errors
def group(request: Request, group_id: Id) -> Response:
    """One group's members, with forms to add and remove members."""
    return _group_page(request, _admin(request), group_id)


@html_errors
def _change_group(request: Request, group_id: Id, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.ADMIN)
    store = who.ctx.store
    if wq.get_group(store, group_id) is None:
        raise ApiError(404, "no such group")
    action = form.get("action", "")
    if action in ("quota", "delete"):
        return _group_action(request, who, group_id, action, form)
    user = store.get_user(form.get("username", "").strip())
    if user is None:
        return _group_page(request, who, group_id, 400, "No such user.")
    here = f"{ADMIN}/groups/{group_id}"
    if action == "add":
        if not wq.add_member(store, group_id, user):
            return _group_page(request, who, group_id, 400, f"{user.name} is already a member.")
        _audit(request, who, "group_member_added", group=group_id, target=user.name)
        return done(here, "member-added")
    if action == "remove":
        if not wq.remove_member(store, group_id, user):
            return _group_page(request, who, group_id, 400, f"{user.name} is not a member.")
        _audit(request, who, "group_member_removed", group=group_id, target=user.name)
        return done(here, "member-removed")
    raise ApiError(400, "unknown action")


def _group_action(
    request: Request, who: Viewer, group_id: Id, action: str, form: dict[str, str]
) -> Response:
    """Set the quota of (``quota``, board-hours, empty: unlimited) or delete a group."""
    try:
        if action == "quota":
            quota = _hours(form.get("quota", ""))
            group = adm.set_quota(who.ctx, group_id, quota)
            _audit(request, who, "group_quota", group=group.name, quota=quota)
            return done(f"{ADMIN}/groups/{group_id}", "group-quota")
        name = adm.delete_group(who.ctx, group_id)
        _audit(request, who, "group_deleted", group=name)
        return done(ADMIN + "/groups", "group-deleted")
    except ApiError as error:
        if error.status == 404:
            raise
        return _group_page(request, who, group_id, error.status, _sentence(error.message))


def _hours(text: str) -> float | None:
    """A quota in board-hours from a form (empty: unlimited), as board-seconds."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text) * 3600.0
    except ValueError:
        raise ApiError(400, "the quota must be a number of board-hours") from None


@router.post(ADMIN + "/groups/{group_id}")
async def change_group(request: Request, group_id: Id) -> Response:
    """Add (``action=add``) or remove (``action=remove``) the member ``username``, set
    the quota (``action=quota``, ``quota`` in board-hours) or delete the group."""
    form = await form_fields(request)
    return await run_in_threadpool(_change_group, request, group_id, form)


# ---- boards -------------------------------------------------------------------------
@router.get(ADMIN + "/boards")
@html_errors
def boards(request: Request) -> Response:
    """Boards of one machine (``?machine=``) with forms to take them in or out of service."""
    who = _admin(request)
    store = who.ctx.store
    machines = wq.machine_summaries(store, include_out_of_service=True)
    name = request.query_params.get("machine") or (machines[0].machine.name if machines else "")
    chosen = next((m for m in machines if m.machine.name == name), None)
    board_list = []
    reasons: dict[int, str] = {}
    picture = None
    if chosen is not None:
        board_list = sorted(store.boards(chosen.machine.id), key=lambda b: b.triad)
        reasons = store.out_of_service_reasons(chosen.machine.id)
        picture = machine_picture(who, chosen.machine.id, label=f"boards of machine {name}")
    return render(
        request,
        who,
        "admin_boards.html",
        machines=machines,
        chosen=chosen,
        boards=board_list,
        reasons=reasons,
        picture=picture,
    )


@html_errors
def _change_board(request: Request, board_id: Id, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.ADMIN)
    action = form.get("action", "")
    if action not in ("enable", "disable"):
        raise ApiError(400, "unknown action")
    board = who.ctx.store.board(board_id)
    if board is None:
        raise ApiError(404, "no such board")
    adm.set_board_enabled(who.ctx, board, action == "enable")
    machine = who.ctx.store.machine_by_id(board.machine_id)
    name = machine.name if machine is not None else ""
    _audit(request, who, f"board_{action}d", machine=name, board=board_id)
    return done(ADMIN + "/boards", f"board-{action}d", machine=name)


@router.post(ADMIN + "/boards/{board_id}")
async def change_board(request: Request, board_id: Id) -> Response:
    """Take a board into (``action=enable``) or out of (``action=disable``) service."""
    form = await form_fields(request)
    return await run_in_threadpool(_change_board, request, board_id, form)
