"""``{srv}/admin/users`` and ``users/{id}``: local users, as the Java server's UserRecord."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server import administration as adm
from pyspalloc.server.api.admin.common import (
    ADMIN,
    TAG,
    Id,
    admin_first,
    admin_of,
    admin_url,
    audit,
    json_object,
)
from pyspalloc.server.api.common import (
    AUTH,
    ApiError,
    ctx_of,
    json_response,
    responses,
    text_response,
)
from pyspalloc.server.store import TrustLevel, UserInfo

router = APIRouter(tags=[TAG])
USERS = ADMIN + "/users"
_FIELDS = {
    "userId", "userName", "password", "hasPassword", "enabled", "locked", "trustLevel",
    "lastSuccessfulLogin", "lastFailedLogin", "openIdSubject", "internal", "groups",
}  # fmt: skip


def user_record(request: Request, user: UserInfo) -> dict[str, Any]:
    """A user as the Java server's ``UserRecord`` (never the password)."""
    ctx = ctx_of(request)
    return {
        "userId": user.id,
        "userName": user.name,
        "hasPassword": user.password_hash is not None,
        "enabled": not user.disabled,
        "locked": user.locked_until > time.time(),
        "trustLevel": user.trust.name,
        "openIdSubject": None,
        "internal": True,
        "groups": {
            m.group_name: admin_url(request, "groups", m.group_id)
            for m in ctx.store.memberships(user_id=user.id)
        },
    }


def _role(value: Any) -> TrustLevel:
    if not isinstance(value, str) or value.upper() not in TrustLevel.__members__:
        raise ApiError(400, f"trustLevel must be one of {', '.join(TrustLevel.__members__)}")
    return TrustLevel[value.upper()]


def _check_fields(body: dict[str, Any]) -> None:
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]}")


def _optional_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise ApiError(400, f"{key} must be true or false")
    return value


@router.get(USERS, responses=responses(*AUTH))
def list_users(request: Request) -> Response:
    """Every user: ``{name: URL}``."""
    admin_of(request)
    users = ctx_of(request).store.list_users()
    return json_response({u.name: admin_url(request, "users", u.id) for u in users})


def _create(request: Request, body: bytes) -> Response:
    caller = admin_of(request)
    ctx = ctx_of(request)
    record = json_object(body)
    _check_fields(record)
    name = record.get("userName")
    if not isinstance(name, str) or not adm.valid_name(name):
        raise ApiError(400, f"userName: {adm.NAME_RULE}")
    password = record.get("password")
    if not isinstance(password, str):
        raise ApiError(400, "password is required (a string)")
    role = _role(record.get("trustLevel", "USER"))
    enabled = _optional_bool(record, "enabled")
    try:
        user = ctx.store.create_user(
            name, ctx.auth.new_password_hash(adm.check_password(password)), role
        )
    except ValueError:
        raise ApiError(409, f"user {name} already exists") from None
    if enabled is False:
        user = adm.update_user(ctx, user, acting_id=caller.user.id, enabled=False)
    audit(request, caller, "user_created", target=name, role=role.name)
    url = admin_url(request, "users", user.id)
    return json_response(user_record(request, user), 201, {"Location": url})


@router.post(
    USERS, status_code=201, responses=responses(400, *AUTH, 409, 413),
    dependencies=[Depends(admin_first)],
)  # fmt: skip
async def create_user(request: Request) -> Response:
    """Create a local user from a UserRecord (``userName``, ``password``, optional
    ``trustLevel`` and ``enabled``); 201 with the record and its ``Location``."""
    body = await request.body()
    return await run_in_threadpool(_create, request, body)


@router.get(USERS + "/{user_id}", responses=responses(400, *AUTH, 404))
def describe_user(request: Request, user_id: Id) -> Response:
    """One user as a UserRecord (with the URLs of their groups)."""
    admin_of(request)
    return json_response(user_record(request, adm.user_by_id(ctx_of(request), user_id)))


def _update(request: Request, user_id: Id, body: bytes) -> Response:
    caller = admin_of(request)
    ctx = ctx_of(request)
    record = json_object(body)
    _check_fields(record)
    user = adm.user_by_id(ctx, user_id)
    if record.get("userName") not in (None, user.name):
        raise ApiError(400, "userName cannot be changed")
    password = record.get("password")
    if password is not None and not isinstance(password, str):
        raise ApiError(400, "password must be a string")
    enabled = _optional_bool(record, "enabled")
    locked = _optional_bool(record, "locked")
    role = None if record.get("trustLevel") is None else _role(record["trustLevel"])
    session = caller.session.key if caller.session is not None else None
    user = adm.update_user(
        ctx, user, acting_id=caller.user.id, acting_session=session,
        password=password, enabled=enabled, role=role,
    )  # fmt: skip
    if locked is False:
        adm.unlock_user(ctx, user)
    if password is not None:
        audit(request, caller, "user_password_reset", target=user.name)
    if enabled is not None:
        audit(request, caller, "user_enabled" if enabled else "user_disabled", target=user.name)
    if role is not None:
        audit(request, caller, "user_role", target=user.name, role=role.name)
    if locked is False:
        audit(request, caller, "user_unlocked", target=user.name)
    return json_response(user_record(request, adm.user_by_id(ctx, user_id)))


@router.put(
    USERS + "/{user_id}", responses=responses(400, *AUTH, 404, 413),
    dependencies=[Depends(admin_first)],
)  # fmt: skip
async def update_user(request: Request, user_id: Id) -> Response:
    """Change ``password``, ``enabled``, ``trustLevel`` or (``false`` only) ``locked``
    of a user; a new password or disabling ends the user's sessions."""
    body = await request.body()
    return await run_in_threadpool(_update, request, user_id, body)


@router.delete(USERS + "/{user_id}", responses=responses(400, *AUTH, 404, 409))
def delete_user(request: Request, user_id: Id) -> Response:
    """Delete a user who owns no jobs (409 otherwise: disable them instead)."""
    caller = admin_of(request)
    name = adm.delete_user(ctx_of(request), user_id, caller.user.id)
    audit(request, caller, "user_deleted", target=name)
    return text_response(f"deleted user {name}")
