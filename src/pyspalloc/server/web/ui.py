"""The browser user interface beyond login: index, machines, jobs and password pages.

Everything lives under ``/spalloc/system/`` (web-api.md §2). Pages need the READER role;
job actions need USER and the job's owner (or an admin); admin pages are in
:mod:`pyspalloc.server.web.admin`. Every form carries the session's CSRF token and is
checked before anything else.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from pyspalloc.geometry import allocation_chip_size
from pyspalloc.server.api.common import ApiError
from pyspalloc.server.api.jobview import machine_of, parse_job_id, visible_job
from pyspalloc.server.store import JobInfo, JobState, TrustLevel
from pyspalloc.server.store import web_queries as wq
from pyspalloc.server.web import admin, admin_machines, admin_site
from pyspalloc.server.web.support import (
    REFRESH_SECONDS,
    SYSTEM,
    Viewer,
    actor,
    done,
    form_fields,
    html_errors,
    job_link,
    machine_picture,
    render,
    viewer,
)

router = APIRouter()
router.include_router(admin.router)
router.include_router(admin_site.router)
router.include_router(admin_machines.router)

_STATIC = Path(__file__).parent / "static"
_RESOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*\.(css|js|svg|png|ico)$")
MIN_PASSWORD = 8
MAX_REASON = 500


def machine_link(name: str) -> str:
    """Return the page of a machine."""
    return f"{SYSTEM}/machine_info/{quote(name, safe='')}"


# ---- static resources ---------------------------------------------------------------
@router.get(SYSTEM + "/resources/{name}")
def resource(name: str) -> Response:
    """Serve the stylesheet and the live-update script (no login needed)."""
    path = _STATIC / name
    if not _RESOURCE_NAME.match(name) or not path.is_file():
        raise ApiError(404, "not found")
    return FileResponse(path, headers={"Cache-Control": "max-age=300"})


# ---- index --------------------------------------------------------------------------
def _index(request: Request) -> Response:
    who = viewer(request)
    machines = wq.machine_summaries(who.ctx.store, include_out_of_service=False)
    jobs = wq.job_summaries(who.ctx.store, deleted=False)
    mine = [j for j in jobs if j.owner_id == who.user_id]
    return render(
        request,
        who,
        "home.html",
        machines=machines,
        live_jobs=len(jobs),
        my_jobs=mine,
        groups=who.ctx.store.group_quotas(time.time(), who.user_id),
        srv="/spalloc/srv/spalloc/",
    )


@router.get(SYSTEM)
@html_errors
def index(request: Request) -> Response:
    """The main page: version, machines, your jobs and links to everything else."""
    return _index(request)


# ---- machines -----------------------------------------------------------------------
@router.get(SYSTEM + "/list_machines")
@html_errors
def list_machines(request: Request) -> Response:
    """Table of machines with utilisation."""
    who = viewer(request)
    machines = wq.machine_summaries(who.ctx.store, include_out_of_service=who.admin)
    return render(request, who, "machines.html", machines=machines, refresh=REFRESH_SECONDS)


@router.get(SYSTEM + "/machine_info/{name}")
@html_errors
def machine_info(request: Request, name: str) -> Response:
    """One machine: its numbers, a picture of its boards and its jobs."""
    who = viewer(request)
    store = who.ctx.store
    summary = next(
        (
            m
            for m in wq.machine_summaries(store, include_out_of_service=who.admin)
            if m.machine.name == name
        ),
        None,
    )
    if summary is None:
        raise ApiError(404, "no such machine")
    picture = machine_picture(who, summary.machine.id, label=f"boards of machine {name}")
    jobs = wq.job_summaries(store, deleted=False, machine_id=summary.machine.id)
    return render(
        request,
        who,
        "machine.html",
        refresh=REFRESH_SECONDS,
        summary=summary,
        m=summary.machine,
        picture=picture,
        jobs=jobs,
        may_see=who.may_see_job,
    )


# ---- jobs ---------------------------------------------------------------------------
@router.get(SYSTEM + "/list_jobs")
@html_errors
def list_jobs(request: Request) -> Response:
    """Table of live jobs (and recently finished ones with ``?deleted=true``)."""
    who = viewer(request)
    deleted = request.query_params.get("deleted", "").lower() == "true"
    jobs = wq.job_summaries(who.ctx.store, deleted=deleted)
    return render(
        request,
        who,
        "jobs.html",
        refresh=REFRESH_SECONDS,
        jobs=jobs,
        deleted=deleted,
        may_see=who.may_see_job,
    )


def _job_details(who: Viewer, job: JobInfo) -> dict[str, Any]:
    store = who.ctx.store
    held = store.held_boards(job.id)
    root = None if job.root_id is None else store.board(job.root_id)
    machine = machine_of(who.ctx, job)
    size = None
    if machine is not None and job.width and job.height and job.depth:
        size = allocation_chip_size(job.width, job.height, job.depth, machine.width, machine.height)
    try:
        request_text = json.dumps(json.loads(job.original_request), indent=2, sort_keys=True)
    except ValueError:
        request_text = job.original_request
    allocated = bool(held) and job.state != JobState.DESTROYED
    return {
        "job": job,
        "held": held,
        "root": root if allocated else None,
        "size": size if allocated else None,
        "powered": allocated and all(b.powered for b in held),
        "allocated": allocated,
        "request_text": request_text,
        "expires_in": job.keepalive_time + job.keepalive_interval - time.time(),
        "picture": machine_picture(
            who, job.machine_id, highlight=job.id, label=f"boards of job {job.id}"
        ),
        "machine_url": machine_link(job.machine_name),
        "may_act": who.caller.user.trust >= TrustLevel.USER,
    }


def _visible(who: Viewer, job: str) -> JobInfo:
    return visible_job(who.ctx, who.caller, parse_job_id(job))


@router.get(SYSTEM + "/job_info/{job}")
@html_errors
def job_info(request: Request, job: str) -> Response:
    """One job: state, keepalive, boards (in the machine picture), power and destroy."""
    who = viewer(request)
    found = _visible(who, job)
    return render(request, who, "job.html", refresh=REFRESH_SECONDS, **_job_details(who, found))


@html_errors
def _destroy(request: Request, job: str, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.USER)
    found = _visible(who, job)
    reason = form.get("reason", "").strip()[:MAX_REASON] or "destroyed from the web interface"
    if found.state != JobState.DESTROYED:
        if who.ctx.lifecycle.destroy(found.id, reason):
            who.ctx.auth.audit(
                request, who.caller, "job_destroyed", job=found.id, reason=reason[:200]
            )
        who.ctx.lifecycle.wake()
    return done(job_link(found.id), "destroyed")


@router.post(SYSTEM + "/delete_job/{job}")
async def delete_job(request: Request, job: str) -> Response:
    """Destroy a job (form with ``reason`` and ``_csrf``)."""
    form = await form_fields(request)
    return await run_in_threadpool(_destroy, request, job, form)


@html_errors
def _power(request: Request, job: str, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.USER)
    found = _visible(who, job)
    wanted = form.get("power", "").lower()
    if wanted not in ("on", "off"):
        raise ApiError(400, "power must be on or off")
    if found.state == JobState.DESTROYED or found.root_id is None:
        return render(
            request,
            who,
            "job.html",
            409,
            refresh=REFRESH_SECONDS,
            error="This job has no boards to switch.",
            **_job_details(who, found),
        )
    who.ctx.lifecycle.set_power(found.id, wanted == "on")
    return done(job_link(found.id), f"power-{wanted}")


@router.post(SYSTEM + "/power_job/{job}")
async def power_job(request: Request, job: str) -> Response:
    """Switch a job's boards on or off (form with ``power`` and ``_csrf``)."""
    form = await form_fields(request)
    return await run_in_threadpool(_power, request, job, form)


# ---- password -----------------------------------------------------------------------
@router.get(SYSTEM + "/change_password")
@html_errors
def change_password_page(request: Request) -> Response:
    """The form to change one's own password."""
    who = viewer(request, TrustLevel.BASIC)
    return render(request, who, "password.html", local=who.caller.user.password_hash is not None)


@html_errors
def _change_password(request: Request, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.BASIC)
    user = who.caller.user
    auth = who.ctx.auth
    old, new, again = (form.get(k, "") for k in ("old", "new", "again"))
    problem = None
    if user.password_hash is None:
        problem = "This account has no local password to change."
    elif len(new) < MIN_PASSWORD:
        problem = f"The new password must have at least {MIN_PASSWORD} characters."
    elif new != again:
        problem = "The new passwords differ."
    elif new == old:
        problem = "The new password is the same as the old one."
    else:  # the old password is checked like a login: limited, counted, hashed in a slot
        check = auth.check_password(user.name, old, auth.address_of(request))
        if check.user is None and check.reason == "bad_password":
            problem = "The current password is wrong."
        elif check.user is None:
            problem = "Too many wrong passwords; try again later."
    if problem is not None:
        return render(
            request, who, "password.html", 400, error=problem, local=user.password_hash is not None
        )
    who.ctx.store.update_user(
        user.name, password_hash=auth.new_password_hash(new), keep_session=who.session.key
    )
    auth.verified.forget(user.id)
    auth.audit(request, who.caller, "password_changed", target=user.name)
    return done(SYSTEM + "/change_password", "password")


@router.post(SYSTEM + "/change_password")
async def change_password(request: Request) -> Response:
    """Change one's own password (old, new, again and ``_csrf``)."""
    form = await form_fields(request)
    return await run_in_threadpool(_change_password, request, form)
