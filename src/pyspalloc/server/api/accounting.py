"""Choosing the group a new job is accounted to, and the quota gate (web-api.md §4.4)."""

from __future__ import annotations

import time

from pyspalloc.server.api.common import bad
from pyspalloc.server.api.requests import CreateJob
from pyspalloc.server.auth import Caller
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import NoSuchGroup, UserInfo


def accounting_group(ctx: ServiceContext, caller: Caller, owner: UserInfo, req: CreateJob) -> int:
    """Return the id of the group the job is accounted to, after checking its quota.

    ``group`` wins over ``nmpi-collab``, which wins over the owner's only group (as in
    the Java server). A collab's group is made on first use only when an admin (the
    NMPI service's account) creates the job; a user must already be in the collab.
    ``nmpi-job-id`` is kept with the request and accounted to the chosen group.

    Raises
    ------
    ApiError
        400 when no group can be chosen, or ``quota exceeded in group N`` when the
        group's usage has reached its quota.
    """
    try:
        if req.group is not None or req.nmpi_collab is None:
            group_id, quota = ctx.store.group_for(owner.id, req.group)
        else:
            create = caller.user.is_admin
            group_id, quota = ctx.store.collab_group(req.nmpi_collab, owner.id, create=create)
    except NoSuchGroup as error:
        raise bad(str(error)) from None
    assert group_id is not None  # group_for raises rather than return no group
    if quota is not None and ctx.store.group_usage(group_id, time.time()) >= quota:
        raise bad(f"quota exceeded in group {group_id}")
    return group_id
