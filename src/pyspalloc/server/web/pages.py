"""Login page, login/logout handling and a minimal index page (web-api.md §3.2)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pyspalloc.server.api.common import SRV, base_url, ctx_of, json_response
from pyspalloc.server.audit import audit
from pyspalloc.server.auth import CSRF_HEADER, CSRF_PARAM, CsrfFailure, pace

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

LOGIN_PAGE = "/spalloc/system/login.html"
SYSTEM = "/spalloc/system/"


def _login_page(request: Request) -> Response:
    ctx = ctx_of(request)
    auth = ctx.auth
    session = None
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        user = auth.check_token(header[7:].strip())
        if user is not None:
            session = auth.new_session(request, user)
    if session is None:
        session = auth.session_of(request)
    if session is None:
        session = auth.new_session(request, None)
    return templates.TemplateResponse(
        request, "login.html", {"csrf": session.csrf, "error": "error" in request.query_params}
    )


@router.get(LOGIN_PAGE)
def login_page(request: Request) -> Response:
    """Serve the login form; a bearer token here starts a session bound to its user."""
    return _login_page(request)


def _failed(reason: str, debug: bool) -> Response:
    message = "computer says no" + (f": {reason}" if debug else "")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json_response({"message": message, "timestamp": stamp}, 401)


def _login(request: Request, form: dict[str, str]) -> Response:
    ctx = ctx_of(request)
    auth = ctx.auth
    session = auth.session_of(request)
    token = form.get(CSRF_PARAM, "")
    if session is None or not token or not secrets.compare_digest(token, session.csrf):
        raise CsrfFailure()
    user = auth.login(request, form.get("username", ""), form.get("password", ""), "form")
    if user is None:
        return _failed("bad credentials", ctx.config.debug)
    auth.end_session(request)
    auth.new_session(request, user)
    return RedirectResponse(SYSTEM, status_code=302)


@router.post("/spalloc/system/perform_login")
async def perform_login(request: Request) -> Response:
    """Check the form; 302 with a new JSESSIONID on success, 401 JSON on failure."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    response = await run_in_threadpool(_login, request, fields)
    await pace(request)
    return response


def _logout(request: Request, form: dict[str, str]) -> Response:
    ctx = ctx_of(request)
    session = ctx.auth.session_of(request)
    if session is not None:
        token = form.get(CSRF_PARAM) or request.headers.get(CSRF_HEADER, "")
        if not token or not secrets.compare_digest(token, session.csrf):
            raise CsrfFailure()
    if session is not None and session.user is not None:
        audit("logout", user=session.user.name, address=ctx.auth.address_of(request))
    ctx.auth.end_session(request)
    response = RedirectResponse(LOGIN_PAGE, status_code=302)
    response.delete_cookie("JSESSIONID", path="/")
    return response


def _logout_page(request: Request) -> Response:
    session = ctx_of(request).auth.session_of(request)
    if session is None:
        return RedirectResponse(LOGIN_PAGE, status_code=302)
    response = templates.TemplateResponse(request, "logout.html", {"csrf": session.csrf})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/spalloc/system/perform_logout")
def logout_get(request: Request) -> Response:
    """Offer the logout form (a GET never logs out: a link on another site could)."""
    return _logout_page(request)


@router.post("/spalloc/system/perform_logout")
async def logout_post(request: Request) -> Response:
    """End the session (CSRF token in ``_csrf`` or ``X-CSRF-TOKEN``); go to the login page."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_logout, request, fields)


def _index(request: Request) -> Response:
    ctx = ctx_of(request)
    caller = ctx.auth.authenticate(request, "GET")
    session = ctx.auth.ensure_session(request, caller)
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "csrf": session.csrf,
            "user": caller.user.name,
            "admin": caller.user.is_admin,
            "machines": ctx.store.machines(),
            "srv": base_url(request) + SRV + "/",
        },
    )


@router.get("/spalloc/system")
def index(request: Request) -> Response:
    """The (minimal) main page."""
    return _index(request)


@router.get("/spalloc")
def root(request: Request) -> Response:
    """Send browsers to the main page."""
    ctx_of(request).auth.authenticate(request, "GET")
    return RedirectResponse(SYSTEM, status_code=302)
