"""Jobs moved to the history tables, for admins (ours).

``GET {srv}/admin/history?limit=&start=`` lists historical jobs, newest first, with the
boards each was given; ``total`` counts them all.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server.api.common import (
    AUTH,
    SRV,
    bad,
    caller_of,
    ctx_of,
    int_param,
    iso,
    json_response,
    responses,
)
from pyspalloc.server.store import HistoricJob, TrustLevel

router = APIRouter()
HISTORY = SRV + "/admin/history"


def history_json(job: HistoricJob) -> dict[str, Any]:
    """Return the JSON form of one historical job."""
    try:
        request: Any = json.loads(job.original_request)
    except ValueError:
        request = None
    return {
        "id": job.id, "owner": job.owner, "group": job.group, "machine": job.machine,
        "start-time": iso(job.create_time), "allocation-time": iso(job.allocation_time),
        "finish-time": iso(job.finish_time), "reason": job.reason,
        "dimensions": None if job.width is None
        else {"width": job.width, "height": job.height, "depth": job.depth},
        "num-boards": job.num_boards, "board-seconds": round(job.board_seconds, 3),
        "boards": [list(t) for t in job.boards], "moved": iso(job.moved),
        "original-request": request,
    }  # fmt: skip


@router.get(HISTORY, responses=responses(400, *AUTH))
def list_history(request: Request) -> Response:
    """List jobs moved to history, newest first (``limit`` 1..200, default 100)."""
    caller_of(request, TrustLevel.ADMIN)
    limit = int_param(request, "limit", 100)
    start = int_param(request, "start", 0)
    if not 1 <= limit <= 200:
        raise bad("limit must be 1 to 200")
    if start < 0:
        raise bad("start must not be negative")
    store = ctx_of(request).store
    jobs = store.history(limit=limit, start=start)
    return json_response(
        {"jobs": [history_json(j) for j in jobs], "total": store.count_history(), "start": start}
    )
