"""The caller's accounting groups with their quotas, usage and what is left (ours).

``GET {srv}/groups`` lists the caller's groups; an admin may add ``?user=NAME`` to see
another user's, or ``?all=true`` for every group. Amounts are board-seconds; ``quota``
and ``remaining`` are null for an unlimited group.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server.api.common import (
    AUTH,
    SRV,
    ApiError,
    caller_of,
    ctx_of,
    json_response,
    parse_bool,
    responses,
)
from pyspalloc.server.store import GroupQuota, TrustLevel

router = APIRouter()


def quota_json(group: GroupQuota) -> dict[str, Any]:
    """Return the JSON form of one group's quota."""
    return {
        "id": group.id,
        "name": group.name,
        "type": "collab" if group.collab else "group",
        "quota": group.quota,
        "used": round(group.used, 3),
        "remaining": None if group.remaining is None else round(group.remaining, 3),
    }


@router.get(SRV + "/groups", responses=responses(400, *AUTH, 404))
def list_groups(request: Request) -> Response:
    """List groups with quota, usage and remaining board-seconds (the caller's own;
    admins may give ``user=NAME`` or ``all=true``)."""
    caller = caller_of(request, TrustLevel.USER)
    ctx = ctx_of(request)
    user_id: int | None = caller.user.id
    name = request.query_params.get("user")
    everything = parse_bool(request.query_params.get("all"))
    if (name is not None or everything) and not caller.user.is_admin:
        raise ApiError(403, "only admins may see other users' groups")
    if everything:
        user_id = None
    elif name is not None:
        user = ctx.store.get_user(name)
        if user is None:
            raise ApiError(404, f"no such user: {name}")
        user_id = user.id
    groups = ctx.store.group_quotas(time.time(), user_id)
    return json_response({"groups": [quota_json(g) for g in groups]})
