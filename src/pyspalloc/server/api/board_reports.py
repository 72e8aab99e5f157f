"""Admin view of board problem reports: list them, clear a board's (ADMIN only).

``GET {srv}/admin/board-reports`` lists every report, newest first;
``DELETE {srv}/admin/board-reports/{board_id}`` forgets a board's reports, so that later
reports count from zero (a board taken out of service is put back on the admin boards page).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server.api.admin.common import Id
from pyspalloc.server.api.common import AUTH, SRV, caller_of, ctx_of, iso, json_response, responses
from pyspalloc.server.store import TrustLevel

router = APIRouter()
REPORTS = SRV + "/admin/board-reports"


@router.get(REPORTS, responses=responses(*AUTH))
def list_board_reports(request: Request) -> Response:
    """List every board report (machine, board, job, reporter, issue, time)."""
    caller_of(request, TrustLevel.ADMIN)
    reports = ctx_of(request).store.board_reports()
    return json_response(
        {
            "reports": [
                {
                    "id": r.id, "board-id": r.board_id, "machine": r.machine,
                    "board": list(r.triad), "job-id": r.job_id, "reporter": r.reporter,
                    "issue": r.issue, "time": iso(r.time), "functioning": r.functioning,
                }
                for r in reports
            ]
        }
    )  # fmt: skip


@router.delete(REPORTS + "/{board_id}", responses=responses(400, *AUTH))
def clear_board_reports(request: Request, board_id: Id) -> Response:
    """Forget the reports of one board; answers how many were cleared."""
    caller_of(request, TrustLevel.ADMIN)
    cleared = ctx_of(request).store.clear_board_reports(board_id)
    return json_response({"board-id": board_id, "cleared": cleared})
