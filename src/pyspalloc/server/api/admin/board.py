"""``{srv}/admin/board``: a board's enabled state as ``text/plain`` ``true``/``false``.

The board is named by ``machine=`` and one of ``x=&y=&z=``, ``cabinet=&frame=&board=``
or ``address=``, as in the Java server.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server import administration as adm
from pyspalloc.server.api.admin.common import (
    ADMIN,
    TAG,
    admin_first,
    admin_of,
    audit,
    text_bool,
)
from pyspalloc.server.api.common import (
    AUTH,
    ApiError,
    ctx_of,
    int_param,
    responses,
    text_response,
)
from pyspalloc.server.store import BoardInfo

router = APIRouter(tags=[TAG])
BOARD = ADMIN + "/board"
_WHERE = "You need to supply coordinates (as x=&y=&z=, cabinet=&frame=&board= or address=)"


def _has(request: Request, *names: str) -> bool:
    return all(request.query_params.get(n) not in (None, "") for n in names)


def find_board(request: Request) -> BoardInfo:
    """The board the query names (400 if it names none, 404 if there is none)."""
    name = request.query_params.get("machine", "").strip()
    if not name:
        raise ApiError(400, "machine name is required")
    ctx = ctx_of(request)
    machine = adm.machine_named(ctx, name)
    boards = ctx.store.boards(machine.id)
    if _has(request, "x", "y", "z"):
        want = tuple(int_param(request, k) for k in ("x", "y", "z"))
        found = [b for b in boards if b.triad == want]
    elif _has(request, "cabinet", "frame", "board"):
        want = tuple(int_param(request, k) for k in ("cabinet", "frame", "board"))
        found = [b for b in boards if (b.cabinet, b.frame, b.board) == want]
    elif _has(request, "address"):
        address = request.query_params["address"].strip()
        found = [b for b in boards if b.address == address]
    else:
        raise ApiError(400, _WHERE)
    if not found:
        raise ApiError(404, "no such board")
    return found[0]


def _answer(enabled: bool) -> Response:
    return text_response("true" if enabled else "false")


@router.get(BOARD, responses=responses(400, *AUTH, 404))
def get_board_state(request: Request) -> Response:
    """Whether the board is in service (``true``) or not (``false``)."""
    admin_of(request)
    return _answer(find_board(request).functioning)


def _set(request: Request, body: bytes) -> Response:
    caller = admin_of(request)
    enabled = text_bool(body, "the board state")
    board = find_board(request)
    changed = adm.set_board_enabled(ctx_of(request), board, enabled)
    audit(
        request, caller, "board_enabled" if enabled else "board_disabled",
        machine=request.query_params.get("machine"), board=board.id,
    )  # fmt: skip
    return _answer(changed.functioning)


@router.put(BOARD, responses=responses(400, *AUTH, 404, 413), dependencies=[Depends(admin_first)])
async def set_board_state(request: Request) -> Response:
    """Take the board into (body ``true``) or out of (``false``) service; answers the
    new state. A job holding the board keeps it; the allocator avoids it from now on."""
    body = await request.body()
    return await run_in_threadpool(_set, request, body)
