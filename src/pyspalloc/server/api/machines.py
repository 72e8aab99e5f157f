"""Machine resources: list, describe and where-is lookups (web-api.md §4.2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.geometry import Chip, Direction, MachineDefinition, Physical, Triad, chip_to_board
from pyspalloc.server.api.common import (
    AUTH,
    SRV,
    ApiError,
    caller_of,
    ctx_of,
    int_param,
    json_response,
    parse_bool,
    responses,
    srv_url,
)
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import BoardInfo, MachineInfo

router = APIRouter()


def board_json(board: BoardInfo | None, triad: Triad | None = None) -> dict[str, Any]:
    """Return the board-coordinates object (``board``/``address`` null if unknown)."""
    if board is None:
        assert triad is not None
        return dict(x=triad.x, y=triad.y, z=triad.z, cabinet=None, frame=None, board=None,
                    address=None)  # fmt: skip
    return {
        "x": board.x, "y": board.y, "z": board.z, "cabinet": board.cabinet,
        "frame": board.frame, "board": board.board, "address": board.address,
    }  # fmt: skip


def _dead(ctx: ServiceContext, info: MachineInfo) -> tuple[list[Any], list[Any]]:
    definition = ctx.machines.get(info.name)
    boards = {b.triad: b for b in ctx.store.boards(info.id)}
    dead: list[Any] = [board_json(b) for b in boards.values() if not b.functioning]
    if definition is not None:
        dead += [board_json(None, t) for t in definition.all_triads() if tuple(t) not in boards]
    links = []
    for board, direction in ctx.store.dead_links(info.id):
        d = Direction(direction)
        end = {"board": board_json(board), "direction": d.java_name}
        other: Any = None
        if definition is not None:
            t = definition.neighbour(Triad(*board.triad), d)
            ob = boards.get((t.x, t.y, t.z))
            other = {"board": board_json(ob, t), "direction": d.opposite.java_name}
        links.append([end, other])
    return dead, links


def _machine(ctx: ServiceContext, name: str) -> MachineInfo:
    info = ctx.store.machine(name)
    if info is None:
        raise ApiError(404, "no such machine")
    return info


def _list(request: Request) -> Response:
    caller_of(request)
    ctx = ctx_of(request)
    out = []
    for info in ctx.store.machines():
        dead, links = _dead(ctx, info)
        out.append(
            {
                "name": info.name, "tags": list(info.tags),
                "uri": f"{srv_url(request)}/machines/{info.name}",
                "width": info.width, "height": info.height,
                "dead-boards": dead, "dead-links": links,
            }
        )  # fmt: skip
    return json_response({"machines": out})


@router.get(SRV + "/machines", responses=responses(*AUTH))
async def list_machines(request: Request) -> Response:
    """List the in-service machines, by name."""
    return await run_in_threadpool(_list, request)


def _describe(request: Request, name: str) -> Response:
    ctx = ctx_of(request)
    info = _machine(ctx, name)
    dead, links = _dead(ctx, info)
    ref = f"{srv_url(request)}/machines/{info.name}"
    return json_response(
        {
            "name": info.name, "tags": list(info.tags), "width": info.width,
            "height": info.height, "down-boards": dead, "down-links": links,
            "lookup-by-physical-board": ref + "/physical-board",
            "lookup-by-logical-board": ref + "/logical-board",
            "lookup-by-chip": ref + "/chip",
            "lookup-by-address": ref + "/board-ip",
        }
    )  # fmt: skip


@router.get(SRV + "/machines/{name}", responses=responses(*AUTH, 404))
async def describe_machine(request: Request, name: str) -> Response:
    """Describe one machine; ``wait=true`` long-polls for a change."""
    await run_in_threadpool(caller_of, request)
    ctx = ctx_of(request)
    await run_in_threadpool(_machine, ctx, name)
    if parse_bool(request.query_params.get("wait")):
        await ctx.events.wait([("machine", name)], ctx.config.wait_timeout)
    return await run_in_threadpool(_describe, request, name)


def where_is(
    request: Request,
    ctx: ServiceContext,
    info: MachineInfo,
    definition: MachineDefinition,
    board: BoardInfo,
    chip: Chip,
) -> dict[str, Any]:
    """Build the where-is object for a global ``chip`` on ``board``."""
    eth = definition.ethernet_chip(Triad(*board.triad))
    result: dict[str, Any] = {
        "machine": info.name,
        "machine-ref": f"{srv_url(request)}/machines/{info.name}",
        "chip": [chip.x, chip.y],
        "board-chip": [eth.x, eth.y],
        "logical-board-coordinates": list(board.triad),
        "physical-board-coordinates": [board.cabinet, board.frame, board.board],
    }
    if board.job_id is not None:
        job = ctx.store.get_job(board.job_id)
        root = None if job is None or job.root_id is None else ctx.store.board(job.root_id)
        if root is not None:
            r = definition.ethernet_chip(Triad(*root.triad))
            result["job-id"] = board.job_id
            result["job-ref"] = f"{srv_url(request)}/jobs/{board.job_id}"
            result["job-chip"] = [
                (chip.x - r.x) % definition.chip_width,
                (chip.y - r.y) % definition.chip_height,
            ]
    return result


def _lookup(request: Request, name: str, kind: str) -> Response:
    caller_of(request)
    ctx = ctx_of(request)
    info = _machine(ctx, name)
    definition = ctx.machines.get(info.name)
    if definition is None:
        raise ApiError(404, "failed to locate board")
    q = request.query_params
    board_def = None
    chip: Chip | None = None
    if kind == "logical-board":
        t = Triad(
            int_param(request, "x", 0), int_param(request, "y", 0), int_param(request, "z", 0)
        )
        board_def = definition.board(t)
    elif kind == "physical-board":
        p = Physical(
            int_param(request, "cabinet", 0),
            int_param(request, "frame", 0),
            int_param(request, "board", 0),
        )
        board_def = definition.board_at_physical(p)
    elif kind == "chip":
        chip = Chip(int_param(request, "x", 0), int_param(request, "y", 0))
        if 0 <= chip.x < definition.chip_width and 0 <= chip.y < definition.chip_height:
            triad, _ = chip_to_board(chip, definition.width, definition.height)
            board_def = definition.board(triad)
    else:
        address = q.get("address")
        if not address:
            raise ApiError(400, "address is required")
        board_def = definition.board_at_ip(address.strip())
    if board_def is None:
        raise ApiError(404, "failed to locate board")
    board = ctx.store.board_at(info.id, *board_def.triad)
    if board is None:
        raise ApiError(404, "failed to locate board")
    if chip is None:
        chip = definition.ethernet_chip(board_def.triad)
    return json_response(where_is(request, ctx, info, definition, board, chip))


@router.get(SRV + "/machines/{name}/{kind}", responses=responses(400, *AUTH, 404))
def lookup(request: Request, name: str, kind: str) -> Response:
    """Where-is lookup by ``logical-board``, ``physical-board``, ``chip`` or ``board-ip``."""
    if kind not in ("logical-board", "physical-board", "chip", "board-ip"):
        raise ApiError(404, "not found")
    return _lookup(request, name, kind)


__all__ = ["board_json", "router", "where_is"]
