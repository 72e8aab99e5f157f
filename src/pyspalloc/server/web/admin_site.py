"""Admin pages for running a site: board reports (with a clear button) and job history.

Every route needs the ADMIN role; the clear form is CSRF-checked first.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server.api.common import ApiError
from pyspalloc.server.store import TrustLevel
from pyspalloc.server.web.support import (
    ADMIN,
    actor,
    done,
    form_fields,
    html_errors,
    render,
    viewer,
)

router = APIRouter()
#: historical jobs per page
HISTORY_PAGE = 50


@router.get(ADMIN + "/reports")
@html_errors
def reports(request: Request) -> Response:
    """Every board report: reporter, job, time, text, board and whether it is in service."""
    who = viewer(request, TrustLevel.ADMIN)
    return render(request, who, "admin_reports.html", reports=who.ctx.store.board_reports())


@html_errors
def _clear(request: Request, board_id: int, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.ADMIN)
    cleared = who.ctx.store.clear_board_reports(board_id)
    if not cleared:
        raise ApiError(404, "no reports of that board")
    who.ctx.auth.audit(request, who.caller, "board_reports_cleared", board=board_id, n=cleared)
    return done(ADMIN + "/reports", "reports-cleared")


@router.post(ADMIN + "/reports/{board_id}")
async def clear_reports(request: Request, board_id: int) -> Response:
    """Forget one board's reports (the board stays in or out of service as it is)."""
    form = await form_fields(request)
    return await run_in_threadpool(_clear, request, board_id, form)


@router.get(ADMIN + "/history")
@html_errors
def history(request: Request) -> Response:
    """Jobs moved to history, newest first, a page at a time (``?start=``)."""
    who = viewer(request, TrustLevel.ADMIN)
    try:
        start = max(0, int(request.query_params.get("start", "0")))
    except ValueError:
        raise ApiError(400, "start must be a number") from None
    store = who.ctx.store
    jobs = store.history(limit=HISTORY_PAGE, start=start)
    return render(
        request,
        who,
        "admin_history.html",
        jobs=jobs,
        start=start,
        page=HISTORY_PAGE,
        total=store.count_history(),
        grace=who.ctx.config.grace_period,
    )
