"""The proxy websocket route ``/spalloc/proxy/{job_id}`` (web-api.md §6).

Before any proxying: the ``Origin`` must be the service's own (or configured), the caller
must authenticate with the USER role and own the job (or be an admin), and the job must
have boards. The websocket then counts as an activity of the job (its end closes the
websocket, and the job's boards are released only after its channels are closed), and its
credential and job are re-checked every ``proxy_recheck_period`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from urllib.parse import urlsplit

from fastapi import FastAPI, WebSocket
from starlette.concurrency import run_in_threadpool

from pyspalloc.server.api.common import ApiError
from pyspalloc.server.api.jobview import job_boards, visible_job
from pyspalloc.server.auth import Caller, NotAuthenticated
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.controller import JobBoards
from pyspalloc.server.job_activity import JobEnded
from pyspalloc.server.login_guard import Busy
from pyspalloc.server.proxy import ProxyOptions, ProxyRegistry, serve_proxy
from pyspalloc.server.store import JobState, TrustLevel

__all__ = ["install_proxy_route", "origin_allowed"]

_DEFAULT_PORTS = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}


def _strip_port(netloc: str, scheme: str) -> str:
    default = _DEFAULT_PORTS.get(scheme, "")
    netloc = netloc.lower()
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc


def origin_allowed(origin: str | None, host: str | None, allowed: Iterable[str] = ()) -> bool:
    """Whether a websocket handshake's ``Origin`` may open the proxy.

    No ``Origin`` (a non-browser client) is allowed. A browser's origin
    (``scheme://host[:port]``) must name the host the request was sent to (its ``Host``)
    or be one of ``allowed``. A bare host name, which spinnman sends and no browser does,
    must be the host name of ``Host``. Anything else (``null``, other sites) is refused.
    """
    if origin is None:
        return True
    origin = origin.strip().rstrip("/")
    if origin.lower() in {a.strip().rstrip("/").lower() for a in allowed}:
        return True
    if not host:
        return False
    if "://" not in origin:
        return origin.lower() == (urlsplit("//" + host).hostname or "")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.path or parts.query:
        return False
    scheme = parts.scheme
    return _strip_port(parts.netloc, scheme) == _strip_port(host, scheme)


def _authorise(ctx: ServiceContext, websocket: WebSocket, job_id: str) -> tuple[Caller, int] | None:
    try:
        caller = ctx.auth.authenticate(websocket, "GET")
        if caller.user.trust < TrustLevel.USER:
            return None
        return caller, visible_job(ctx, caller, int(job_id)).id
    except (NotAuthenticated, Busy, ApiError, ValueError):
        return None  # Busy: no password check free now; the handshake is refused


def _options(ctx: ServiceContext, boards: JobBoards) -> ProxyOptions:
    config = ctx.config
    return ProxyOptions(
        local_host=config.proxy_local_host,
        max_channels=max(config.proxy_max_channels, 2 * len(boards)),
        max_per_job=config.proxy_max_websockets_per_job,
        max_per_user=config.proxy_max_websockets_per_user,
        recheck_period=config.proxy_recheck_period,
    )


def install_proxy_route(app: FastAPI, registry: ProxyRegistry) -> None:
    """Add the proxy websocket route to ``app``, serving through ``registry``."""

    @app.websocket("/spalloc/proxy/{job_id}")
    async def proxy(websocket: WebSocket, job_id: str) -> None:
        ctx: ServiceContext = websocket.app.state.ctx
        origin = websocket.headers.get("origin")
        if not ctx.config.proxy_enable or not origin_allowed(
            origin, websocket.headers.get("host"), ctx.config.allowed_origins
        ):
            await websocket.close(code=1008)
            return
        found = await run_in_threadpool(_authorise, ctx, websocket, job_id)
        if found is None:
            await websocket.close(code=1008)
            return
        caller, number = found
        activity = ctx.lifecycle.activity
        try:
            running = activity.start(number, "proxy")
        except JobEnded:
            running = None
        try:
            # read after registering: either the job's end sees this websocket, or this
            # read sees the job ended
            boards = await run_in_threadpool(_live_boards, ctx, number)
            if running is None or not boards:
                await websocket.accept()
                await websocket.close(code=1011, reason="job has no allocation")
                return
            held = running
            credential = partial(ctx.auth.caller_still_valid, caller, TrustLevel.USER)

            def alive() -> bool:
                return not held.cancelled.is_set()

            def still_valid() -> bool:
                return alive() and credential() and _live_boards(ctx, number) == boards

            await serve_proxy(
                websocket,
                number,
                boards,
                registry,
                options=_options(ctx, boards),
                job_alive=alive,
                user_id=caller.user.id,
                still_valid=still_valid,
                released=lambda: activity.finish(held),
            )
        finally:
            if running is not None:
                activity.finish(running)


def _live_boards(ctx: ServiceContext, job_id: int) -> JobBoards:
    job = ctx.store.get_job(job_id)
    if job is None or job.state not in (JobState.POWER, JobState.READY):
        return {}
    return job_boards(ctx, job)
