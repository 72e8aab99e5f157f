"""``{srv}/admin/groups`` and ``groups/{id}``: groups as the Java server's GroupRecord.

Quotas are in board-seconds (``null``: unlimited), as in the Java server.
"""

from __future__ import annotations

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
from pyspalloc.server.store import web_queries as wq

router = APIRouter(tags=[TAG])
GROUPS = ADMIN + "/groups"
_FIELDS = {"groupId", "groupName", "quota", "type", "members"}


def group_record(request: Request, group: wq.GroupInfo) -> dict[str, Any]:
    """A group as the Java server's ``GroupRecord`` (members: name -> membership URL)."""
    members = ctx_of(request).store.memberships(group_id=group.id)
    return {
        "groupId": group.id,
        "groupName": group.name,
        "quota": None if group.quota is None else round(group.quota),
        "type": "INTERNAL",
        "members": {
            m.user_name: admin_url(request, "groups", group.id, "members", m.id) for m in members
        },
    }


def _quota(record: dict[str, Any]) -> float | None:
    value = record.get("quota")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ApiError(400, "quota must be a number of board-seconds or null")
    if value < 0 or value > 2**53:
        raise ApiError(400, "quota must be between 0 and 2^53 board-seconds")
    return float(value)


def _check(record: dict[str, Any]) -> None:
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]}")
    if record.get("type", "INTERNAL") != "INTERNAL":
        raise ApiError(400, "type: only INTERNAL groups can be made or kept here")


@router.get(GROUPS, responses=responses(*AUTH))
def list_groups(request: Request) -> Response:
    """Every group: ``{name: URL}``."""
    admin_of(request)
    groups = wq.list_groups(ctx_of(request).store)
    return json_response({g.name: admin_url(request, "groups", g.id) for g in groups})


def _create(request: Request, body: bytes) -> Response:
    caller = admin_of(request)
    record = json_object(body)
    _check(record)
    name = record.get("groupName")
    if not isinstance(name, str) or not adm.valid_name(name):
        raise ApiError(400, f"groupName: {adm.NAME_RULE}")
    quota = _quota(record)
    try:
        group = wq.create_group(ctx_of(request).store, name, quota)
    except ValueError:
        raise ApiError(400, "group already exists") from None
    audit(request, caller, "group_created", group=name, quota=quota)
    url = admin_url(request, "groups", group.id)
    return json_response(group_record(request, group), 201, {"Location": url})


@router.post(
    GROUPS, status_code=201, responses=responses(400, *AUTH, 413),
    dependencies=[Depends(admin_first)],
)  # fmt: skip
async def create_group(request: Request) -> Response:
    """Create a group from a GroupRecord (``groupName``, optional ``quota``);
    400 ``group already exists`` as in the Java server."""
    body = await request.body()
    return await run_in_threadpool(_create, request, body)


@router.get(GROUPS + "/{group_id}", responses=responses(400, *AUTH, 404))
def describe_group(request: Request, group_id: Id) -> Response:
    """One group as a GroupRecord."""
    admin_of(request)
    return json_response(group_record(request, adm.group_by_id(ctx_of(request), group_id)))


def _update(request: Request, group_id: Id, body: bytes) -> Response:
    caller = admin_of(request)
    ctx = ctx_of(request)
    record = json_object(body)
    _check(record)
    group = adm.group_by_id(ctx, group_id)
    if record.get("groupName") not in (None, group.name):
        raise ApiError(400, "groupName cannot be changed")
    if "quota" in record:
        quota = _quota(record)
        group = adm.set_quota(ctx, group_id, quota)
        audit(request, caller, "group_quota", group=group.name, quota=quota)
    return json_response(group_record(request, group))


@router.put(
    GROUPS + "/{group_id}", responses=responses(400, *AUTH, 404, 413),
    dependencies=[Depends(admin_first)],
)  # fmt: skip
async def update_group(request: Request, group_id: Id) -> Response:
    """Set a group's ``quota`` (board-seconds; ``null``: unlimited)."""
    body = await request.body()
    return await run_in_threadpool(_update, request, group_id, body)


@router.delete(GROUPS + "/{group_id}", responses=responses(400, *AUTH, 404, 409))
def delete_group(request: Request, group_id: Id) -> Response:
    """Delete a group with no jobs accounted to it (409 otherwise)."""
    caller = admin_of(request)
    name = adm.delete_group(ctx_of(request), group_id)
    audit(request, caller, "group_deleted", group=name)
    return text_response(f"deleted group {name}")
