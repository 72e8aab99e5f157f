"""The FastAPI application of the service: routes, middleware, errors, websocket seam.

Seams for the other service modules:

* power: :class:`pyspalloc.server.controller.MachineController` (see there);
* server-side SCP: :class:`pyspalloc.server.controller.JobOperations`;
* proxy: ``/spalloc/proxy/{job_id}`` (:mod:`pyspalloc.server.api.proxy_route`) checks
  the Origin, authenticates the handshake (USER role), checks the caller may use the job,
  then serves it with :func:`pyspalloc.server.proxy.serve_proxy`; the lifecycle calls
  ``registry.close_job(job_id)`` when a job is destroyed or re-queued.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pyspalloc.exceptions import SpinnmanException, SpinnmanInvalidParameterException
from pyspalloc.geometry import MachineDefinition
from pyspalloc.server.allowed_hosts import AllowedHostsMiddleware, allowed_names
from pyspalloc.server.api import admin_history, board_reports, job_resources, jobs, quotas, root
from pyspalloc.server.api import machines as machines_api
from pyspalloc.server.api.admin import board as admin_board
from pyspalloc.server.api.admin import groups as admin_groups
from pyspalloc.server.api.admin import machines as admin_machines
from pyspalloc.server.api.admin import members as admin_members
from pyspalloc.server.api.admin import users as admin_users
from pyspalloc.server.api.common import ApiError, document_statuses, text_response
from pyspalloc.server.api.proxy_route import install_proxy_route
from pyspalloc.server.auth import (
    REALM,
    SESSION_COOKIE,
    Authenticator,
    CsrfFailure,
    Forbidden,
    NotAuthenticated,
    hash_password,
    pace,
)
from pyspalloc.server.body_limit import BodyLimitMiddleware, BodyTooLarge
from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.controller import BoardNotBooted, MachineController
from pyspalloc.server.events import EventHub
from pyspalloc.server.hardware import make_controller, make_job_operations
from pyspalloc.server.history_worker import HistoryWorker
from pyspalloc.server.lifecycle import Lifecycle
from pyspalloc.server.login_guard import Busy, SharedBasicCheck
from pyspalloc.server.metrics import install_metrics
from pyspalloc.server.proxy import ProxyRegistry, channel_budget
from pyspalloc.server.report_mail import ReportMailer
from pyspalloc.server.security_headers import SecurityHeadersMiddleware
from pyspalloc.server.store import Store, TrustLevel
from pyspalloc.server.v1 import start_v1
from pyspalloc.server.web import pages, ui
from pyspalloc.server.web.api_docs import install_api_docs

log = logging.getLogger(__name__)

_SLASHES = re.compile(r"/{2,}")
LOGIN_REQUIRED = (
    "log in required, either with BASIC auth or HBP/EBRAINS bearer token (if they are enabled)"
)


class PathAndCookieMiddleware:
    """Collapses ``//`` and drops trailing slashes; sets the JSESSIONID a route asked for."""

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = _SLASHES.sub("/", scope["path"])
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        scope["path"] = path
        scope["raw_path"] = path.encode("utf-8")
        state = scope.setdefault("state", {})

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                session_id = state.get("set_session_cookie")
                if session_id:
                    cookie = Response()
                    cookie.set_cookie(
                        SESSION_COOKIE, session_id, path="/", httponly=True,
                        secure=self.secure, samesite="lax",
                    )  # fmt: skip
                    headers = list(message.get("headers", []))
                    headers = [h for h in headers if h[0].lower() != b"set-cookie"
                               or not h[1].startswith(SESSION_COOKIE.encode() + b"=")]  # fmt: skip
                    headers += [h for h in cookie.raw_headers if h[0] == b"set-cookie"]
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "x-requested-with" not in request.headers


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> Response:
        return text_response(error.message, error.status)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, _: NotAuthenticated) -> Response:
        await pace(request)
        if _wants_html(request):
            return RedirectResponse(pages.LOGIN_PAGE, status_code=302)
        response = text_response(LOGIN_REQUIRED, 401)
        response.headers.append("WWW-Authenticate", f'Basic realm="{REALM}"')
        response.headers.append(
            "WWW-Authenticate",
            f'Bearer realm="{REALM}", scope="openid, profile, roles, email, team, group"',
        )
        return response

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, error: BodyTooLarge) -> Response:
        response = text_response(str(error), 413)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        return response

    @app.exception_handler(Busy)
    async def busy(_: Request, __: Busy) -> Response:
        response = text_response("too many password checks at once; try again shortly", 503)
        response.headers["Retry-After"] = "2"
        return response

    @app.exception_handler(CsrfFailure)
    async def csrf_failure(_: Request, __: CsrfFailure) -> Response:
        return text_response("invalid or missing CSRF token", 403)

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, __: Forbidden) -> Response:
        return text_response("computer says no", 403)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> Response:
        errors = error.errors()
        where = ".".join(str(p) for p in errors[0].get("loc", ())) if errors else "request"
        return text_response(f"bad request: {where}", 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        message = "not found" if error.status_code == 404 else str(error.detail)
        return text_response(message, error.status_code)

    @app.exception_handler(SpinnmanInvalidParameterException)
    async def invalid_parameter(_: Request, error: SpinnmanInvalidParameterException) -> Response:
        return text_response(str(error), 400)

    @app.exception_handler(BoardNotBooted)
    async def not_booted(_: Request, error: BoardNotBooted) -> Response:
        return text_response(str(error), 409)

    @app.exception_handler(SpinnmanException)
    async def board_failure(_: Request, error: SpinnmanException) -> Response:
        # handled here, not by the catch-all below: Starlette re-raises what reaches the
        # Exception handler, and uvicorn then drops the client's keep-alive connection
        log.warning("board operation failed: %s", error)
        name = type(error).__name__.replace("Exception", "") or "Spinnman"
        return text_response(f"unexpected server problem: {name}: {error}", 500)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> Response:
        log.exception("unexpected error")
        name = type(error).__name__.replace("Exception", "").replace("Error", "") or "Error"
        return text_response(f"unexpected server problem: {name}: {error}", 500)


def ensure_admin(store: Store) -> str | None:
    """Create ``admin`` with a random password if there are no users; return the password."""
    if store.count_users():
        return None
    password = secrets.token_urlsafe(12)
    store.create_user("admin", hash_password(password), TrustLevel.ADMIN)
    return password


def load_machines(config: ServiceConfig) -> dict[str, MachineDefinition]:
    """Read every machine spec of the configuration; a machine without tags gets
    the tag ``default``."""
    from pyspalloc.geometry import machine_from_spec

    found: dict[str, MachineDefinition] = {}
    for spec in config.machines:
        for machine in machine_from_spec(spec, config.virtual_address_base):
            if not machine.tags:
                machine = dataclasses.replace(machine, tags=("default",))
            found[machine.name] = machine
    return found


def off_wait_times(config: ServiceConfig) -> dict[str, float]:
    """Seconds each configured machine's boards rest between power-off and power-on."""
    from pyspalloc.geometry import machine_from_spec

    return {
        machine.name: config.off_wait_for(spec)
        for spec in config.machines
        for machine in machine_from_spec(spec, config.virtual_address_base)
    }


def create_app(
    config: ServiceConfig,
    *,
    machines: dict[str, MachineDefinition] | None = None,
    controller: MachineController | None = None,
    store: Store | None = None,
) -> FastAPI:
    """Build the service application (the lifecycle starts with the app's lifespan).

    Parameters
    ----------
    config:
        Service configuration.
    machines:
        Machine definitions by name; default: those of ``config.machines``.
    controller:
        Power controller; default: ``make_controller(config.controller)``.
    store:
        Database; default: a :class:`Store` on ``config.database_url()``.
    """
    if store is None:
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = Store(config.database_url())
    if machines is None:
        machines = load_machines(config)
    for machine in machines.values():
        store.sync_machine(machine)
    for name in store.retire_machines(set(machines)):
        log.warning("machine %s is no longer configured: taken out of service", name)
    events = EventHub()
    controller = controller or make_controller(config.controller, config.read_boot_image())
    lifecycle = Lifecycle(store, machines, controller, events, config)
    lifecycle.allocation.off_wait = off_wait_times(config)
    registry = ProxyRegistry(
        channel_budget(config.proxy_max_channels_total), config.proxy_max_channels_per_user
    )
    lifecycle.job_end_listeners.append(registry.close_job)
    ctx = ServiceContext(
        config=config,
        store=store,
        auth=Authenticator(store, config),
        events=events,
        lifecycle=lifecycle,
        machines=machines,
        operations=make_job_operations(),
    )

    store.default_user_quota = config.default_user_quota
    store.default_collab_quota = config.default_collab_quota
    history = HistoryWorker(store, config)
    mailer = ReportMailer(store, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        lifecycle.start()
        v1 = None if config.v1 is None else await start_v1(ctx, config.v1)
        app.state.v1 = v1
        history.start()
        if config.report_email_to is not None:
            mailer.start()
        try:
            yield
        finally:
            if v1 is not None:
                await v1.stop()
            registry.close_all()
            await run_in_threadpool(mailer.stop)
            await run_in_threadpool(history.stop)
            await run_in_threadpool(lifecycle.stop)

    app = FastAPI(
        title="pyspalloc",
        version=".".join(str(v) for v in config.version),
        openapi_url="/spalloc/srv/openapi.json",
        docs_url=None,  # install_api_docs: Swagger UI served locally
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.history, app.state.mailer = history, mailer
    for module in (
        root,
        machines_api,
        jobs,
        job_resources,
        board_reports,
        quotas,
        admin_history,
        admin_machines,
        admin_board,
        admin_users,
        admin_groups,
        admin_members,
        ui,
        pages,
    ):  # ui before pages
        app.include_router(module.router)
    _install_handlers(app)
    document_statuses(app)  # the handlers answer 400, never 422
    install_proxy_route(app, registry)
    install_api_docs(app)
    # outermost last: hosts checked first, then paths normalised, then one password check
    # per Basic credential, then bodies limited
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SharedBasicCheck, verified=ctx.auth.verified, wait=config.hash_wait + 5.0)
    app.add_middleware(SecurityHeadersMiddleware, tls=config.tls)
    app.add_middleware(PathAndCookieMiddleware, secure=config.tls)
    app.add_middleware(
        AllowedHostsMiddleware, names=allowed_names(config.host, config.allowed_hosts)
    )
    install_metrics(app, config, store, registry, lifecycle)  # outermost: times the rest
    return app
