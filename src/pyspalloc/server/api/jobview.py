"""Reading a job for the REST layer: visibility, state JSON and board connections."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import HTTPConnection

from pyspalloc.geometry import Chip, MachineDefinition, Triad, ethernet_chip
from pyspalloc.server.allocator import connections_for
from pyspalloc.server.api.common import ApiError, base_url, iso, no_such_job, srv_url
from pyspalloc.server.auth import Caller
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.controller import JobBoards
from pyspalloc.server.store import BoardInfo, JobInfo, JobState


def parse_job_id(text: str) -> int:
    """Turn the path segment into a job id (404 if not a number, 400 if not positive)."""
    try:
        job_id = int(text)
    except ValueError:
        raise ApiError(404, "not found") from None
    if job_id <= 0:
        raise ApiError(400, "job ID must be positive")
    if job_id > 2**31 - 1:
        raise no_such_job()
    return job_id


def visible_job(ctx: ServiceContext, caller: Caller, job_id: int) -> JobInfo:
    """Return the job if the caller owns it or is an admin; else 404 ``no such job``.

    A job moved to history is returned as DESTROYED (with no machine or boards).
    """
    job = ctx.store.get_job(job_id) or ctx.store.historic_job(job_id)
    if job is None or (job.owner_id != caller.user.id and not caller.user.is_admin):
        raise no_such_job()
    return job


def job_url(conn: HTTPConnection, job_id: int) -> str:
    """Return the absolute URL of a job."""
    return f"{srv_url(conn)}/jobs/{job_id}"


def proxy_url(conn: HTTPConnection, job_id: int) -> str:
    """Return the websocket URL of a job's proxy (``wss`` only when serving HTTPS)."""
    base = base_url(conn)
    scheme = "wss" if base.startswith("https:") else "ws"
    return f"{scheme}:{base.split(':', 1)[1]}/spalloc/proxy/{job_id}"


def state_json(ctx: ServiceContext, conn: HTTPConnection, job: JobInfo) -> dict[str, Any]:
    """Return the job state object of web-api.md §4.5."""
    url = job_url(conn, job.id)
    out: dict[str, Any] = {"state": job.state.name, "owner": job.owner}
    out["start-time"] = iso(job.create_time)
    if job.state == JobState.DESTROYED:
        out["finish-time"] = iso(job.finish_time)
    else:
        if job.keepalive_host is not None:
            out["keepalive-host"] = job.keepalive_host
        out["keep-alive-time"] = iso(job.keepalive_time)
    if job.reason is not None:
        out["reason"] = job.reason
    out["keepalive-ref"] = url + "/keepalive"
    out["machine-ref"] = url + "/machine"
    out["power-ref"] = url + "/machine/power"
    out["chip-ref"] = url + "/chip"
    if ctx.config.proxy_enable and job.state in (JobState.POWER, JobState.READY):
        out["proxy-ref"] = proxy_url(conn, job.id)
    try:
        out["original-request"] = json.loads(job.original_request)
    except ValueError:
        pass
    return out


def machine_of(ctx: ServiceContext, job: JobInfo) -> MachineDefinition | None:
    """Return the definition of the job's machine."""
    name = ctx.lifecycle.machine_name(job.machine_id)
    return None if name is None else ctx.machines.get(name)


def connections(
    ctx: ServiceContext, job: JobInfo
) -> tuple[MachineDefinition, BoardInfo, list[tuple[Chip, str, BoardInfo]]] | None:
    """Return (machine, root board, [(relative Ethernet chip, ip, board)]) of a live job."""
    machine = machine_of(ctx, job)
    if machine is None or job.root_id is None or job.state == JobState.DESTROYED:
        return None
    held = {Triad(*b.triad): b for b in ctx.store.held_boards(job.id)}
    root = ctx.store.board(job.root_id)
    if root is None or not held:
        return None
    triads = list(held)
    order = connections_for(machine, triads, Triad(*root.triad))
    by_chip = {}
    rx, ry = ethernet_chip(Triad(*root.triad))
    for t, b in held.items():
        ex, ey = ethernet_chip(t)
        by_chip[((ex - rx) % machine.chip_width, (ey - ry) % machine.chip_height)] = b
    return machine, root, [(chip, ip, by_chip[(chip.x, chip.y)]) for chip, ip in order]


def job_boards(ctx: ServiceContext, job: JobInfo) -> JobBoards:
    """Return the job's job-relative Ethernet chip -> board IP map (empty if none)."""
    found = connections(ctx, job)
    if found is None:
        return {}
    return {(c.x, c.y): ip for c, ip, _ in found[2]}
