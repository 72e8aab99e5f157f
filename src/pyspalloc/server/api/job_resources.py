"""Job sub-resources: allocation, power, chip, report-issue, memory, router (§4.8-4.12)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.geometry import (
    Chip,
    MachineDefinition,
    Physical,
    Triad,
    chip_to_board,
    ethernet_chip,
)
from pyspalloc.server.api.common import (
    AUTH,
    SRV,
    ApiError,
    authenticate_first,
    bad,
    caller_of,
    client_host,
    ctx_of,
    int_param,
    json_response,
    parse_json,
    responses,
    srv_url,
)
from pyspalloc.server.api.jobview import (
    connections,
    job_boards,
    job_url,
    machine_of,
    parse_job_id,
    visible_job,
)
from pyspalloc.server.auth import Caller
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.controller import JobBoards, JobOperations
from pyspalloc.server.job_activity import JobEnded
from pyspalloc.server.store import BoardInfo, JobInfo, JobState, TrustLevel

router = APIRouter()
JOB = SRV + "/jobs/{job}"
#: a memory write's body goes to the board in pieces of this many bytes
WRITE_CHUNK = 1024 * 1024


def _job(request: Request, job: str, touch: bool) -> tuple[ServiceContext, Caller, JobInfo]:
    caller = caller_of(request, TrustLevel.USER)
    ctx = ctx_of(request)
    job_id = parse_job_id(job)
    if touch:  # before the read, so that the job read shows this access
        owner = None if caller.user.is_admin else caller.user.id
        ctx.store.keepalive(job_id, client_host(request), owner_id=owner)
    return ctx, caller, visible_job(ctx, caller, job_id)


@router.get(JOB + "/machine", responses=responses(204, 400, *AUTH, 404))
def get_allocation(request: Request, job: str) -> Response:
    """Return the job's boards and connections (204 before allocation)."""
    ctx, _, found = _job(request, job, True)
    if found.width is None or found.height is None:
        return Response(status_code=204)
    machine = machine_of(ctx, found)
    name = machine.name if machine else ""
    conns: list[Any] = []
    boards: list[Any] = []
    live = connections(ctx, found)
    if live is not None:
        conns = [[[c.x, c.y], ip] for c, ip, _ in live[2]]
        boards = [list(b.triad) for _, _, b in live[2]]
    return json_response(
        {
            "width": found.width, "height": found.height, "depth": found.depth,
            "machine-name": name, "connections": conns, "boards": boards,
            "power": job_url(request, found.id) + "/machine/power",
            "machine-ref": f"{srv_url(request)}/machines/{name}",
        }
    )  # fmt: skip


@router.get(JOB + "/machine/power", responses=responses(204, 400, *AUTH, 404))
def get_power(request: Request, job: str) -> Response:
    """Return ``ON`` if every allocated board is powered, else ``OFF``."""
    ctx, _, found = _job(request, job, True)
    if found.root_id is None:
        return Response(status_code=204)
    held = ctx.store.held_boards(found.id)
    on = bool(held) and all(b.powered for b in held) and found.state != JobState.DESTROYED
    return json_response({"power": "ON" if on else "OFF"})


async def _body_json(request: Request) -> Any:
    return parse_json(await request.body())


def _set_power(request: Request, job: str, body: Any) -> Response:
    ctx, _, found = _job(request, job, True)
    power = body.get("power") if isinstance(body, dict) else None
    if isinstance(body, dict):
        for key in body:
            if key != "power":
                raise bad(f"unrecognized field {key}")
    if not isinstance(power, str) or power.upper() not in ("ON", "OFF"):
        raise bad("power must be specified")
    if found.root_id is None:
        return Response(status_code=204)
    if found.state == JobState.DESTROYED:
        raise bad("job is destroyed")
    ctx.lifecycle.set_power(found.id, power.upper() == "ON")
    return Response(status_code=202)


@router.post(
    JOB + "/machine/power",
    status_code=202,
    response_class=Response,
    responses=responses(204, 400, *AUTH, 404, 413),
    dependencies=[Depends(authenticate_first)],
)
async def post_power(request: Request, job: str) -> Response:
    """Start a power change of the job's boards (202)."""
    body = await _body_json(request)
    return await run_in_threadpool(_set_power, request, job, body)


@router.get(JOB + "/chip", responses=responses(204, 400, *AUTH, 404))
def where_is_chip(request: Request, job: str) -> Response:
    """Locate a job-relative chip (204 if it is not in the job)."""
    ctx, _, found = _job(request, job, True)
    x, y = _chip_param(request)
    live = connections(ctx, found)
    if live is None:
        return Response(status_code=204)
    machine, root, conns = live
    rx, ry = ethernet_chip(Triad(*root.triad))
    cw, ch = machine.chip_width, machine.chip_height
    if not (0 <= x < cw and 0 <= y < ch):
        return Response(status_code=204)
    triad, _ = chip_to_board(Chip((x + rx) % cw, (y + ry) % ch), machine.width, machine.height)
    for rel, _, board in conns:
        if board.triad == tuple(triad):
            return json_response(
                {
                    "machine": machine.name,
                    "machine-ref": f"{srv_url(request)}/machines/{machine.name}",
                    "chip": [x, y], "board-chip": [rel.x, rel.y],
                    "logical-board-coordinates": list(board.triad),
                    "physical-board-coordinates": [board.cabinet, board.frame, board.board],
                    "job-id": found.id, "job-ref": job_url(request, found.id),
                    "job-chip": [x, y],
                }
            )  # fmt: skip
    return Response(status_code=204)


def _locate(
    entry: dict[str, Any],
    machine: MachineDefinition,
    held: dict[tuple[int, int, int], BoardInfo],
    by_chip: dict[tuple[int, int], BoardInfo],
) -> BoardInfo | None:
    if "chip" in entry:
        cx, cy = entry["chip"]
        return by_chip.get((int(cx), int(cy)))
    found = None
    if "x" in entry:
        found = machine.board(Triad(int(entry["x"]), int(entry["y"]), int(entry.get("z", 0))))
    elif "cabinet" in entry:
        found = machine.board_at_physical(
            Physical(int(entry["cabinet"]), int(entry["frame"]), int(entry["board"]))
        )
    elif "address" in entry:
        found = machine.board_at_ip(str(entry["address"]))
    else:
        raise KeyError("locator")
    if found is None:
        return None
    t = found.triad
    return held.get((t.x, t.y, t.z))


def _report(request: Request, job: str, body: Any) -> Response:
    ctx, caller, found = _job(request, job, False)
    if not isinstance(body, dict):
        raise bad("request body must be a JSON object")
    for key in body:
        if key not in ("issue", "boards"):
            raise bad(f"unrecognized field {key}")
    issue, boards = body.get("issue"), body.get("boards")
    if not isinstance(issue, str) or not isinstance(boards, list):
        raise bad("issue and boards must be given")
    longest = ctx.config.max_issue_length
    if len(issue) > longest:
        raise bad(f"issue is too long (at most {longest} characters)")
    live = connections(ctx, found)
    if live is None:
        return json_response({"action": f"job {found.id} has no allocation"})
    machine, _, conns = live
    held = {b.triad: b for _, _, b in conns}
    by_chip = {(c.x, c.y): b for c, _, b in conns}
    reported: dict[int, BoardInfo] = {}  # each board once, however often it is named
    for entry in boards:
        if not isinstance(entry, dict):
            raise bad("boards must be a list of objects")
        try:
            board = _locate(entry, machine, held, by_chip)
        except (KeyError, TypeError, ValueError):
            raise bad("boards: each needs chip, x/y/z, cabinet/frame/board or address") from None
        if board is None:
            return json_response({"action": f"board {entry} not in job {found.id}"})
        reported[board.id] = board
    taken = 0
    for board_id in reported:
        if ctx.store.report_board(
            board_id, found.id, caller.user.id, issue, ctx.config.report_action_threshold
        ):
            taken += 1
    action = f"{taken} boards taken out of service" if taken else "report noted"
    return json_response({"action": action})


@router.post(
    JOB + "/report-issue",
    responses=responses(400, *AUTH, 404, 413),
    dependencies=[Depends(authenticate_first)],
)
async def report_issue(request: Request, job: str) -> Response:
    """Record a problem with some of the job's boards."""
    body = await _body_json(request)
    return await run_in_threadpool(_report, request, job, body)


_NOT_ACTIVE = "unexpected server problem: IllegalState: Job is not active!"


@contextmanager
def _operation(request: Request, job: str, what: str) -> Iterator[BoardAccess]:
    """Run a server-side operation on the job's boards for the block.

    The operation is registered with the lifecycle's :class:`JobActivity` before the job
    is read again, so either the job's end cancels (and waits for) it, or the read sees
    the job ended or its boards changed and refuses it. A cancelled operation answers
    like one on a job without boards.
    """
    ctx, _, found = _job(request, job, False)
    boards = job_boards(ctx, found)
    if not boards:
        raise ApiError(500, _NOT_ACTIVE)
    operations = ctx.operations
    if operations is None:
        raise ApiError(
            500, "unexpected server problem: Unsupported: server-side operations unavailable"
        )
    activity = ctx.lifecycle.activity
    try:
        with activity.begin(found.id, what) as running:
            now = ctx.store.get_job(found.id)
            if now is None or job_boards(ctx, now) != boards:
                raise JobEnded(f"job {found.id} is not active")
            yield BoardAccess(operations, boards, running.check)
    except JobEnded:
        raise ApiError(500, _NOT_ACTIVE) from None


@asynccontextmanager
async def _operation_in_threads(
    request: Request, job: str, what: str
) -> AsyncIterator[BoardAccess]:
    """:func:`_operation` for an async route: its blocking steps run in the thread pool."""
    operation = _operation(request, job, what)
    on = await run_in_threadpool(operation.__enter__)
    try:
        yield on
    except BaseException as error:
        if not await run_in_threadpool(operation.__exit__, type(error), error, error.__traceback__):
            raise
    else:
        await run_in_threadpool(operation.__exit__, None, None, None)


class BoardAccess:
    """A job's boards and the operations on them, for one registered operation."""

    __slots__ = ("boards", "checkpoint", "operations")

    def __init__(
        self, operations: JobOperations, boards: JobBoards, checkpoint: Callable[[], None]
    ) -> None:
        self.operations = operations
        self.boards = boards
        self.checkpoint = checkpoint


#: the chip coordinates SC&MP reads as "the chip this board's Ethernet is on"
#: (spinnaker-wire.md §1.3); for a job they mean its root chip, (0, 0)
ROOT_ALIAS = (255, 255)


def _chip_param(request: Request) -> tuple[int, int]:
    """The ``x``, ``y`` query parameters, with (255, 255) meaning the job's root chip."""
    x, y = int_param(request, "x", 0), int_param(request, "y", 0)
    return (0, 0) if (x, y) == ROOT_ALIAS else (x, y)


def _read_memory(request: Request, job: str) -> Response:
    x, y = _chip_param(request)
    address, size = int_param(request, "address"), int_param(request, "size")
    with _operation(request, job, "memory read") as on:
        data = on.operations.read_memory(on.boards, x, y, address, size, on.checkpoint)
    return Response(bytes(data), media_type="application/octet-stream")


@router.get(
    JOB + "/memory",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        },
        **responses(400, *AUTH, 404, 500),
    },
)
def read_memory(request: Request, job: str) -> Response:
    """Read ``size`` bytes of a chip's memory on the server side."""
    return _read_memory(request, job)


async def _chunks(request: Request, size: int) -> AsyncIterator[bytes]:
    """Yield the request body in pieces of ``size`` bytes (the last may be shorter)."""
    pending = bytearray()
    async for piece in request.stream():
        pending += piece
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


@router.post(
    JOB + "/memory",
    status_code=202,
    response_class=Response,
    responses=responses(400, *AUTH, 404, 413, 500),
    dependencies=[Depends(authenticate_first)],
)
async def write_memory(request: Request, job: str) -> Response:
    """Write the body to a chip's memory on the server side (202).

    The body is written as it arrives, :data:`WRITE_CHUNK` bytes at a time, so the
    service never holds more than one piece of it.
    """
    x, y = _chip_param(request)
    address = int_param(request, "address")
    length = request.headers.get("content-length", "")
    if length.isdigit() and address + int(length) > 2**32:
        raise bad("size runs past the end of memory")
    async with _operation_in_threads(request, job, "memory write") as on:
        offset = 0
        async for chunk in _chunks(request, WRITE_CHUNK):
            await run_in_threadpool(
                on.operations.write_memory, on.boards, x, y, address + offset, chunk, on.checkpoint
            )
            offset += len(chunk)
        if offset == 0:
            await run_in_threadpool(
                on.operations.write_memory, on.boards, x, y, address, b"", on.checkpoint
            )
    return Response(status_code=202)


@router.delete(
    JOB + "/router",
    status_code=202,
    response_class=Response,
    responses=responses(400, *AUTH, 404, 500),
)
def reset_router(request: Request, job: str) -> Response:
    """Clear routing tables and counters, install diagnostic filters (202)."""
    filters: dict[int, int] = {}
    for key, value in request.query_params.multi_items():
        try:
            index, word = int(key), int(value)
        except ValueError:
            raise bad(f"router filter {key} must be integer index=word") from None
        if index in filters:
            raise bad(f"router filter {key} given twice")
        filters[index] = word
    with _operation(request, job, "router reset") as on:
        on.operations.reset_router(on.boards, filters, on.checkpoint)
    return Response(status_code=202)
