"""Job resources: list, create, state, keepalive, destroy (web-api.md §4.3-4.7)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from pyspalloc.geometry import MachineDefinition, Physical, Triad
from pyspalloc.server.allocator import AllocationRequest
from pyspalloc.server.api.accounting import accounting_group
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
    parse_bool,
    parse_json,
    responses,
    srv_url,
    text_response,
)
from pyspalloc.server.api.jobview import job_url, parse_job_id, state_json, visible_job
from pyspalloc.server.api.requests import BoardLocator, CreateJob, parse_create_job
from pyspalloc.server.auth import Caller
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import JobInfo, MachineInfo, RequestSpec, TooManyJobs, TrustLevel

router = APIRouter()

NO_MACHINE = "no machine available which matches allocation request"
TOO_BIG = "request cannot fit on machine"


def _list_page(request: Request) -> tuple[list[int], dict[str, str]]:
    caller = caller_of(request)
    ctx = ctx_of(request)
    limit = int_param(request, "limit", 100)
    start = int_param(request, "start", 0)
    if limit > 200:
        raise bad("limit must not be bigger than 200")
    if limit < 1:
        raise bad("limit must be at least 1")
    if start < 0:
        raise bad("start must not be negative")
    deleted = parse_bool(request.query_params.get("deleted"))
    owner = None if caller.user.is_admin else caller.user.id
    ids = ctx.store.list_jobs(deleted=deleted, limit=limit, start=start, owner_id=owner)
    params = dict(request.query_params)
    params["wait"] = "false"
    links: dict[str, str] = {}
    if start > 0:
        links["prev"] = (
            f"{srv_url(request)}/jobs?{urlencode({**params, 'start': max(start - limit, 0)})}"
        )
    if len(ids) == limit:
        links["next"] = f"{srv_url(request)}/jobs?{urlencode({**params, 'start': start + limit})}"
    return ids, links


@router.get(SRV + "/jobs", responses=responses(400, *AUTH))
async def list_jobs(request: Request) -> Response:
    """List job URLs, newest first; non-admins see only their own jobs."""
    ids, links = await run_in_threadpool(_list_page, request)
    ctx = ctx_of(request)
    if ids and parse_bool(request.query_params.get("wait")):
        await ctx.events.wait([("job", i) for i in ids], ctx.config.wait_timeout)
        ids, links = await run_in_threadpool(_list_page, request)
    body: dict[str, object] = {"jobs": [job_url(request, i) for i in ids], **links}
    headers = {}
    if links:
        headers["Link"] = ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())
    return json_response(body, headers=headers)


def _resolve_board(
    ctx: ServiceContext, info: MachineInfo, machine: MachineDefinition, locator: BoardLocator
) -> tuple[Triad, int] | None:
    if locator.triad is not None:
        found = machine.board(Triad(*locator.triad))
    elif locator.physical is not None:
        found = machine.board_at_physical(Physical(*locator.physical))
    else:
        found = machine.board_at_ip(locator.address or "")
    if found is None:
        return None
    row = ctx.store.board_at(info.id, *found.triad)
    if row is None or not row.functioning:
        return None
    return Triad(*found.triad), row.id


def _too_big(req: CreateJob, machine: MachineDefinition) -> bool:
    if req.num_boards is not None:
        return req.num_boards > len(machine.boards)
    if req.width is not None and req.height is not None:
        return req.width > machine.width or req.height > machine.height
    return False


def select_machine(ctx: ServiceContext, req: CreateJob) -> tuple[MachineInfo, RequestSpec]:
    """Bind a request to the first in-service machine on which it is possible.

    Raises
    ------
    ApiError
        400 ``no machine available which matches allocation request`` or
        ``request cannot fit on machine``.
    """
    too_big = False
    for info in ctx.store.machines():
        if req.machine_name is not None and info.name != req.machine_name:
            continue
        if req.tags is not None and not set(req.tags) <= set(info.tags):
            continue
        machine = ctx.machines.get(info.name)
        if machine is None:
            continue
        if _too_big(req, machine):
            too_big = True
            continue
        board: tuple[Triad, int] | None = None
        if req.board is not None:
            board = _resolve_board(ctx, info, machine, req.board)
            if board is None or (req.width is not None and board[0].z != 0):
                continue
        request = AllocationRequest(
            num_boards=req.num_boards,
            width=req.width,
            height=req.height,
            board=None if board is None else board[0],
            max_dead_boards=req.max_dead_boards,
        )
        if not ctx.lifecycle.allocator(info.name).is_possible(request):
            continue
        spec = RequestSpec(
            req.num_boards,
            req.width,
            req.height,
            None if board is None else board[1],
            req.max_dead_boards,
        )
        return info, spec
    raise bad(TOO_BIG if too_big else NO_MACHINE)


def _create(request: Request, body: bytes) -> Response:
    caller = caller_of(request, TrustLevel.USER)
    ctx = ctx_of(request)
    if ctx.lifecycle.halted:
        raise ApiError(
            500,
            "unexpected server problem: IllegalState: "
            "The Server has been stopped due to an emergency.",
        )
    req = parse_create_job(
        parse_json(body),
        keepalive_min=ctx.config.keepalive_min,
        keepalive_max=ctx.config.keepalive_max,
        may_set_owner=caller.user.is_admin,
    )
    owner = caller.user
    if req.owner is not None:
        found = ctx.store.get_user(req.owner)
        if found is None:
            raise bad(f"no such user: {req.owner}")
        owner = found
    group_id = accounting_group(ctx, caller, owner, req)
    info, spec = select_machine(ctx, req)
    try:
        job = ctx.store.create_job(
            machine_id=info.id,
            owner_id=owner.id,
            group_id=group_id,
            keepalive_interval=req.keepalive,
            keepalive_host=client_host(request),
            original_request=json.dumps(req.original(owner.name)),
            spec=spec,
            priority=ctx.lifecycle.priority(spec),
            machine_name=info.name,
            owner_name=owner.name,
            max_live=ctx.config.max_jobs_per_user,
        )
    except TooManyJobs as error:
        raise ApiError(429, f"{error}: destroy one first") from None
    ctx.auth.audit(request, caller, "job_created", job=job.id, owner=owner.name, machine=info.name)
    ctx.events.notify("jobs")
    ctx.lifecycle.wake()
    url = job_url(request, job.id)
    return json_response({"job-id": job.id, "job-ref": url}, 201, {"Location": url})


@router.post(
    SRV + "/jobs",
    status_code=201,
    responses={
        201: {
            "headers": {"Location": {"description": "the job URL", "schema": {"type": "string"}}}
        },
        **responses(400, *AUTH, 413, 429, 500),
    },
    dependencies=[Depends(authenticate_first)],
)
async def create_job(request: Request) -> Response:
    """Create a job (201 with an absolute ``Location``)."""
    body = await request.body()
    return await run_in_threadpool(_create, request, body)


def _viewer(caller: Caller) -> object:
    return caller.session.key if caller.session is not None else ("user", caller.user.id)


def _shown(job: JobInfo | None) -> tuple[int, bool] | None:
    """What a long poll compares: a change of state or of power target wakes it."""
    return None if job is None else (int(job.state), job.power_target)


def _state(request: Request, job_id: int) -> Response:
    caller = caller_of(request, TrustLevel.USER)
    ctx = ctx_of(request)
    job = visible_job(ctx, caller, job_id)
    ctx.events.mark_seen(_viewer(caller), ("job", job_id), _shown(job))
    return json_response(state_json(ctx, request, job))


def _check_visible(request: Request, job_id: int) -> object:
    caller = caller_of(request, TrustLevel.USER)
    visible_job(ctx_of(request), caller, job_id)
    return _viewer(caller)


@router.get(SRV + "/jobs/{job}", responses=responses(400, *AUTH, 404, 410))
async def get_job(request: Request, job: str) -> Response:
    """Return the job state; ``wait=true`` blocks until the job next changes.

    If the job's state (or power target) differs from what this session was last
    shown, it returns at once, so a change just before the wait began is not missed.
    What was shown is compared with the database, not with notifications, so a read
    that already saw a change cannot be woken by that change's late announcement.
    """
    job_id = parse_job_id(job)
    ctx = ctx_of(request)
    if parse_bool(request.query_params.get("wait")):
        viewer = await run_in_threadpool(_check_visible, request, job_id)
        key = ("job", job_id)
        seen = ctx.events.last_seen(viewer, key)

        async def changed() -> bool:
            if seen is None:
                return False
            return _shown(await run_in_threadpool(ctx.store.get_job, job_id)) != seen

        await ctx.events.wait([key], ctx.config.wait_timeout, changed)
        if await run_in_threadpool(ctx.store.get_job, job_id) is None:
            raise ApiError(410, "no such job")
    return await run_in_threadpool(_state, request, job_id)


@router.put(
    SRV + "/jobs/{job}/keepalive",
    response_class=PlainTextResponse,
    responses=responses(400, *AUTH, 404),
)
def keepalive(request: Request, job: str) -> Response:
    """Record that the job's user is still there."""
    caller = caller_of(request, TrustLevel.USER)
    ctx = ctx_of(request)
    job_id = parse_job_id(job)
    owner = None if caller.user.is_admin else caller.user.id
    if not ctx.store.keepalive(job_id, client_host(request), owner_id=owner):
        visible_job(ctx, caller, job_id)  # 404 unless it is a destroyed job of the caller
    return text_response("ok")


@router.delete(SRV + "/jobs/{job}", status_code=204, responses=responses(400, *AUTH, 404))
def delete_job(request: Request, job: str) -> Response:
    """Destroy the job (204)."""
    caller = caller_of(request, TrustLevel.USER)
    ctx = ctx_of(request)
    job_id = parse_job_id(job)
    owner = None if caller.user.is_admin else caller.user.id
    reason = request.query_params.get("reason", "")
    if not ctx.lifecycle.destroy(job_id, reason, owner_id=owner):  # (wakes the allocator)
        visible_job(ctx, caller, job_id)  # 404 unless it is a destroyed job of the caller
    else:
        ctx.auth.audit(request, caller, "job_destroyed", job=job_id, reason=reason[:200])
    return Response(status_code=204)
