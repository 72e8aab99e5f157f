"""``{srv}/admin`` (a description), ``admin/import`` (machine definitions at run time)
and ``admin/machines`` (ours: every machine, in or out of service, and its tags)."""

from __future__ import annotations

from typing import Any

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
    admin_url,
    audit,
    text_bool,
)
from pyspalloc.server.api.common import (
    AUTH,
    ctx_of,
    json_response,
    parse_json,
    responses,
    text_response,
)
from pyspalloc.server.store import MachineInfo
from pyspalloc.server.store import web_queries as wq

router = APIRouter(tags=[TAG])
IMPORT = ADMIN + "/import"
MACHINES = ADMIN + "/machines"


def machine_record(request: Request, info: MachineInfo, **extra: Any) -> dict[str, Any]:
    """A machine as the admin API shows it."""
    return {
        "name": info.name, "id": info.id, "tags": list(info.tags), "width": info.width,
        "height": info.height, "in-service": info.in_service,
        "url": admin_url(request, "machines", info.name), **extra,
    }  # fmt: skip


@router.get(ADMIN, responses=responses(*AUTH))
def describe_operations(request: Request) -> Response:
    """The admin resources (as the Java server's, plus ours)."""
    admin_of(request)
    return json_response(
        {
            "importMachines": admin_url(request, "import"),
            "setBoardEnabled": admin_url(request, "board"),
            "users": admin_url(request, "users"),
            "groups": admin_url(request, "groups"),
            "machines": admin_url(request, "machines"),
            "boardReports": admin_url(request, "board-reports"),
        }
    )


@router.get(IMPORT, responses=responses(*AUTH))
def describe_import(request: Request) -> Response:
    """Say that this resource takes POSTs."""
    admin_of(request)
    return text_response("This resource only really supports POST.")


def _import(request: Request, body: bytes) -> Response:
    caller = admin_of(request)
    ctx = ctx_of(request)
    machines = adm.parse_import(parse_json(body))
    done = adm.import_machines(ctx, machines)
    for info in done:
        audit(request, caller, "machine_imported", machine=info.name, tags=",".join(info.tags))
    return json_response({"imported": [machine_record(request, i) for i in done]}, 201)


@router.post(
    IMPORT, status_code=201, responses=responses(400, *AUTH, 409, 413),
    dependencies=[Depends(admin_first)],
)  # fmt: skip
async def import_machines(request: Request) -> Response:
    """Add machines defined in the Java server's JSON format (``{"machines": [...]}``,
    at most 4 MiB) to the running service; they are served at once, until restart
    (to keep one, name its file with ``serve --machine``). 409 if a name is taken."""
    body = await request.body()
    return await run_in_threadpool(_import, request, body)


@router.get(MACHINES, responses=responses(*AUTH))
def list_machines(request: Request) -> Response:
    """Every machine, in service or not, with board counts."""
    admin_of(request)
    ctx = ctx_of(request)
    summaries = wq.machine_summaries(ctx.store, include_out_of_service=True)
    return json_response(
        {
            "machines": [
                machine_record(
                    request, s.machine, boards=s.boards, **{"boards-in-use": s.in_use,
                    "boards-out-of-service": s.dead, "live-jobs": s.jobs,
                    "served": s.machine.name in ctx.machines},
                )
                for s in summaries
            ]
        }
    )  # fmt: skip


@router.get(MACHINES + "/{name}", responses=responses(*AUTH, 404))
def describe_machine(request: Request, name: str) -> Response:
    """One machine, in service or not."""
    admin_of(request)
    return json_response(machine_record(request, adm.machine_named(ctx_of(request), name)))


def _service(request: Request, name: str, body: bytes) -> Response:
    caller = admin_of(request)
    in_service = text_bool(body, "in-service")
    info = adm.set_machine_in_service(ctx_of(request), name, in_service)
    audit(request, caller, "machine_in_service" if in_service else "machine_out_of_service",
          machine=name)  # fmt: skip
    return text_response("true" if info.in_service else "false")


@router.put(
    MACHINES + "/{name}/in-service", responses=responses(400, *AUTH, 404, 409, 413),
    dependencies=[Depends(admin_first)],
)  # fmt: skip
async def set_in_service(request: Request, name: str) -> Response:
    """Take a whole machine into (``true``) or out of (``false``) service: no new jobs
    go to a machine out of service; jobs already on it (queued or running) go on."""
    body = await request.body()
    return await run_in_threadpool(_service, request, name, body)


def _retag(request: Request, name: str, body: bytes) -> Response:
    caller = admin_of(request)
    tags = adm.parse_tags(parse_json(body))
    info = adm.retag_machine(ctx_of(request), name, tags)
    audit(request, caller, "machine_retagged", machine=name, tags=",".join(tags))
    return json_response(machine_record(request, info))


@router.put(
    MACHINES + "/{name}/tags", responses=responses(400, *AUTH, 404, 413),
    dependencies=[Depends(admin_first)],
)  # fmt: skip
async def set_tags(request: Request, name: str) -> Response:
    """Replace a machine's tags with a JSON list of strings."""
    body = await request.body()
    return await run_in_threadpool(_retag, request, name, body)
