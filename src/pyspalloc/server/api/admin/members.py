"""``{srv}/admin/groups/{id}/members[/{memberId}]``: memberships as the Java server's
MemberRecord."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server import administration as adm
from pyspalloc.server.api.admin.common import (
    MAX_ID,
    TAG,
    Id,
    admin_first,
    admin_of,
    admin_url,
    audit,
    json_object,
)
from pyspalloc.server.api.admin.groups import GROUPS
from pyspalloc.server.api.common import AUTH, ApiError, ctx_of, json_response, responses
from pyspalloc.server.store import MemberInfo

router = APIRouter(tags=[TAG])
MEMBERS = GROUPS + "/{group_id}/members"


def member_record(request: Request, member: MemberInfo) -> dict[str, Any]:
    """A membership as the Java server's ``MemberRecord``."""
    return {
        "id": member.id,
        "groupId": member.group_id,
        "groupName": member.group_name,
        "groupUrl": admin_url(request, "groups", member.group_id),
        "userId": member.user_id,
        "userName": member.user_name,
        "userUrl": admin_url(request, "users", member.user_id),
    }


def _member(request: Request, group_id: Id, member_id: Id) -> MemberInfo:
    ctx = ctx_of(request)
    adm.group_by_id(ctx, group_id)
    member = ctx.store.membership(member_id)
    if member is None or member.group_id != group_id:
        raise ApiError(404, "no such membership")
    return member


@router.get(MEMBERS, responses=responses(400, *AUTH, 404))
def list_members(request: Request, group_id: Id) -> Response:
    """The group's members: ``{user name: membership URL}``."""
    admin_of(request)
    ctx = ctx_of(request)
    adm.group_by_id(ctx, group_id)
    return json_response(
        {
            m.user_name: admin_url(request, "groups", group_id, "members", m.id)
            for m in ctx.store.memberships(group_id=group_id)
        }
    )


def _add(request: Request, group_id: Id, body: bytes) -> Response:
    caller = admin_of(request)
    ctx = ctx_of(request)
    record = json_object(body)
    group = adm.group_by_id(ctx, group_id)
    name = record.get("userName")
    user = ctx.store.get_user(name) if isinstance(name, str) else None
    if user is None:
        user_id = record.get("userId")
        if isinstance(user_id, int) and 0 <= user_id <= MAX_ID:
            user = ctx.store.get_user_by_id(user_id)
    if user is None:
        raise ApiError(404, "no such user")
    member = ctx.store.add_membership(group_id, user.id)
    if member is None:
        raise ApiError(400, "user already a member of group")
    audit(request, caller, "group_member_added", group=group.name, target=user.name)
    url = admin_url(request, "groups", group_id, "members", member.id)
    return json_response(member_record(request, member), 201, {"Location": url})


@router.post(
    MEMBERS, status_code=201, responses=responses(400, *AUTH, 404, 413),
    dependencies=[Depends(admin_first)],
)  # fmt: skip
async def add_member(request: Request, group_id: Id) -> Response:
    """Add the user named by ``userName`` (or ``userId``) to the group; 201 with the
    MemberRecord; 400 ``user already a member of group``."""
    body = await request.body()
    return await run_in_threadpool(_add, request, group_id, body)


@router.get(MEMBERS + "/{member_id}", responses=responses(400, *AUTH, 404))
def describe_member(request: Request, group_id: Id, member_id: Id) -> Response:
    """One membership as a MemberRecord."""
    admin_of(request)
    return json_response(member_record(request, _member(request, group_id, member_id)))


@router.delete(MEMBERS + "/{member_id}", status_code=204, responses=responses(400, *AUTH, 404))
def remove_member(request: Request, group_id: Id, member_id: Id) -> Response:
    """End a membership (204)."""
    caller = admin_of(request)
    member = _member(request, group_id, member_id)
    if not ctx_of(request).store.remove_membership(member.id):
        raise ApiError(404, "no such membership")
    audit(request, caller, "group_member_removed", group=member.group_name, target=member.user_name)
    return Response(status_code=204)
