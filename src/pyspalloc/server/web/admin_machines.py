"""Admin page ``/spalloc/system/admin/machines``: whole machines in and out of service,
their tags, and importing a machine definition (a file upload).

The same :mod:`pyspalloc.server.administration` functions as the admin REST API.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server import administration as adm
from pyspalloc.server.api.common import ApiError
from pyspalloc.server.body_limit import IMPORT_LIMIT
from pyspalloc.server.store import TrustLevel
from pyspalloc.server.store import web_queries as wq
from pyspalloc.server.web.support import (
    ADMIN,
    Viewer,
    actor,
    done,
    form_fields,
    html_errors,
    render,
    viewer,
)

router = APIRouter()
MACHINES = ADMIN + "/machines"


def _page(request: Request, who: Viewer, status: int = 200, error: str | None = None) -> Response:
    machines = wq.machine_summaries(who.ctx.store, include_out_of_service=True)
    return render(request, who, "admin_machines.html", status, error=error, machines=machines)


def _refused(request: Request, who: Viewer, error: ApiError) -> Response:
    if error.status == 404:
        raise error
    message = error.message[:1].upper() + error.message[1:]
    return _page(request, who, error.status, message if message.endswith(".") else message + ".")


def _audit(request: Request, who: Viewer, event: str, **fields: str | float | None) -> None:
    who.ctx.auth.audit(request, who.caller, event, **fields)


@router.get(MACHINES)
@html_errors
def machines(request: Request) -> Response:
    """Every machine, with forms to take it in or out of service, retag it, import one."""
    return _page(request, viewer(request, TrustLevel.ADMIN))


@html_errors
def _import(request: Request, form: dict[str, str], content: bytes | None) -> Response:
    who = actor(request, form, TrustLevel.ADMIN)
    if content is None:
        return _page(request, who, 400, "Choose a machine definition file.")
    try:
        document = json.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _page(request, who, 400, "The file is not valid JSON.")
    try:
        imported = adm.import_machines(who.ctx, adm.parse_import(document))
    except ApiError as error:
        return _refused(request, who, error)
    for info in imported:
        _audit(request, who, "machine_imported", machine=info.name, tags=",".join(info.tags))
    return done(MACHINES, "machine-imported")


@router.post(MACHINES + "/import")
async def import_machine(request: Request) -> Response:
    """Import the uploaded JSON machine definition (``definition``); the caller must be
    an ADMIN before the upload is read, and the form's CSRF token is checked after."""
    await run_in_threadpool(viewer, request, TrustLevel.ADMIN)
    form = await request.form(max_files=1, max_fields=8)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get("definition")
    content = None
    if isinstance(upload, UploadFile):
        content = await upload.read(IMPORT_LIMIT + 1)
    await form.close()
    return await run_in_threadpool(_import, request, fields, content or None)


@html_errors
def _change(request: Request, name: str, form: dict[str, str]) -> Response:
    who = actor(request, form, TrustLevel.ADMIN)
    action = form.get("action", "")
    try:
        if action in ("in-service", "out-of-service"):
            adm.set_machine_in_service(who.ctx, name, action == "in-service")
            _audit(request, who, f"machine_{action.replace('-', '_')}", machine=name)
            return done(MACHINES, f"machine-{action}")
        if action == "retag":
            tags = adm.parse_tags([t for t in form.get("tags", "").split(",") if t.strip()])
            adm.retag_machine(who.ctx, name, tags)
            _audit(request, who, "machine_retagged", machine=name, tags=",".join(tags))
            return done(MACHINES, "machine-retagged")
    except ApiError as error:
        return _refused(request, who, error)
    raise ApiError(400, "unknown action")


@router.post(MACHINES + "/{name}")
async def change_machine(request: Request, name: str) -> Response:
    """Take a machine into (``action=in-service``) or out of (``out-of-service``) service,
    or set its tags (``action=retag``, ``tags`` separated by commas)."""
    form = await form_fields(request)
    return await run_in_threadpool(_change, request, name, form)
