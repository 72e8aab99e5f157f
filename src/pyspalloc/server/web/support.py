"""Shared helpers of the HTML pages: templates, who is asking, CSRF on forms, redirects."""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import urlencode

import jinja2
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pyspalloc.geometry import Triad
from pyspalloc.server.api.common import ApiError, ctx_of
from pyspalloc.server.auth import CSRF_HEADER, CSRF_PARAM, Caller, CsrfFailure, Forbidden
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import BoardInfo, SessionInfo, TrustLevel
from pyspalloc.server.web.machine_picture import MachinePicture, PictureBoard, render_machine

SYSTEM = "/spalloc/system"
RESOURCES = SYSTEM + "/resources"
ADMIN = SYSTEM + "/admin"
#: seconds between live updates of job and machine pages
REFRESH_SECONDS = 5

#: messages shown after a successful form, chosen by the ``done`` query parameter
NOTICES: dict[str, str] = {
    "destroyed": "The job is being destroyed; its boards are powered off and freed.",
    "power-on": "The job's boards are being switched on.",
    "power-off": "The job's boards are being switched off.",
    "password": "Your password has been changed.",
    "user-created": "User created.",
    "user-enabled": "User enabled.",
    "user-disabled": "User disabled; their sessions have ended.",
    "user-role": "Role changed.",
    "user-password": "Password reset.",
    "user-unlocked": "Account unlocked.",
    "group-created": "Group created.",
    "member-added": "Member added.",
    "member-removed": "Member removed.",
    "board-enabled": "Board taken into service.",
    "board-disabled": "Board taken out of service; it will not be allocated again.",
    "reports-cleared": "The board's reports have been cleared.",
    "user-deleted": "User deleted.",
    "group-deleted": "Group deleted.",
    "group-quota": "Quota changed.",
    "machine-imported": "Machine imported; it is in service now.",
    "machine-in-service": "Machine taken into service.",
    "machine-out-of-service": "Machine taken out of service; no new jobs go to it.",
    "machine-retagged": "Tags changed.",
}

_HERE = Path(__file__).parent


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "\u2014"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["when"] = _when
_env.filters["iso"] = _iso
_env.filters["duration"] = _seconds
_env.globals.update(SYSTEM=SYSTEM, RESOURCES=RESOURCES, ADMIN=ADMIN)
templates = Jinja2Templates(env=_env)


@dataclass
class Viewer:
    """The signed-in user of a page, and the session whose CSRF token forms carry."""

    ctx: ServiceContext
    caller: Caller
    session: SessionInfo

    @property
    def admin(self) -> bool:
        """Whether the viewer is an administrator."""
        return self.caller.user.is_admin

    @property
    def user_id(self) -> int:
        """The viewer's user id."""
        return self.caller.user.id

    def may_see_job(self, owner_id: int) -> bool:
        """Whether the viewer may open a job's page (its owner, or an admin)."""
        return self.admin or owner_id == self.user_id


_VIEWER = "web_viewer"


def _remember(request: Request, who: Viewer, role: TrustLevel) -> Viewer:
    request.state.web_viewer = who
    if who.caller.user.trust < role:
        raise Forbidden()
    return who


def viewer(request: Request, role: TrustLevel = TrustLevel.READER) -> Viewer:
    """Authenticate a page request (GET) and check ``role``.

    Raises
    ------
    NotAuthenticated
        Browsers are sent to the login page.
    Forbidden
        The user lacks ``role`` (403).
    """
    ctx = ctx_of(request)
    caller = ctx.auth.authenticate(request, "GET")
    session = ctx.auth.ensure_session(request, caller)
    return _remember(request, Viewer(ctx, caller, session), role)


def actor(request: Request, form: dict[str, str], role: TrustLevel) -> Viewer:
    """Authenticate a form submission: the CSRF token first, then the user and ``role``.

    The token may come in the ``_csrf`` field or the ``X-CSRF-TOKEN`` header; bearer-token
    requests are exempt, as on the REST API.

    Raises
    ------
    CsrfFailure
        Missing or wrong token (403).
    NotAuthenticated, Forbidden
        As for :func:`viewer`.
    """
    ctx = ctx_of(request)
    bearer = request.headers.get("authorization", "")[:7].lower() == "bearer "
    if not bearer:
        session = ctx.auth.session_of(request)
        token = form.get(CSRF_PARAM) or request.headers.get(CSRF_HEADER, "")
        if session is None or not token or not secrets.compare_digest(token, session.csrf):
            raise CsrfFailure()
    caller = ctx.auth.authenticate(request, "GET")
    session_info = ctx.auth.ensure_session(request, caller)
    return _remember(request, Viewer(ctx, caller, session_info), role)


async def form_fields(request: Request) -> dict[str, str]:
    """Return the submitted form's text fields."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def render(
    request: Request,
    who: Viewer,
    template: str,
    status: int = 200,
    *,
    refresh: int = 0,
    error: str | None = None,
    **values: Any,
) -> Response:
    """Render a page with the values every page uses (user, CSRF token, notice, ...)."""
    done = request.query_params.get("done", "")
    context: dict[str, Any] = {
        "user": who.caller.user.name,
        "admin": who.admin,
        "csrf": who.session.csrf,
        "version": ".".join(str(v) for v in who.ctx.config.version),
        "notice": NOTICES.get(done),
        "error": error,
        "refresh": refresh,
        "now": time.time(),
        **values,
    }
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def done(path: str, what: str, **params: str) -> Response:
    """Redirect (303) to ``path`` after a successful form, announcing ``what``."""
    query = urlencode({**params, "done": what})
    return RedirectResponse(f"{path}?{query}", status_code=303)


P = ParamSpec("P")


def html_errors(fn: Callable[P, Response]) -> Callable[P, Response]:
    """Answer 403 and 4xx errors of a signed-in user's page with an HTML error page.

    The wrapped function takes the request as its first (or ``request=``) argument.
    Errors before the user is known (no login, bad CSRF token) keep the service's
    plain answers.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return fn(*args, **kwargs)
        except (Forbidden, ApiError) as error:
            request = kwargs.get("request", args[0] if args else None)
            who = getattr(request.state, _VIEWER, None) if isinstance(request, Request) else None
            if not isinstance(request, Request) or not isinstance(who, Viewer):
                raise
            if isinstance(error, Forbidden):
                status, message = 403, "You are not allowed to do that (computer says no)."
            else:
                status, message = error.status, error.message
            return render(request, who, "error.html", status, code=status, message=message)

    return wrapper


def job_link(job_id: int) -> str:
    """Return the page of a job."""
    return f"{SYSTEM}/job_info/{job_id}"


# ---- pictures -----------------------------------------------------------------------
def machine_picture(
    who: Viewer, machine_id: int, *, highlight: int | None = None, label: str = "machine"
) -> MachinePicture:
    """Draw a machine's boards for ``who`` (owners and links only where permitted)."""
    store = who.ctx.store
    boards = store.boards(machine_id)
    owners: dict[int, tuple[int, str]] = {}
    for job_id in {b.job_id for b in boards if b.job_id is not None}:
        job = store.get_job(job_id)
        if job is not None:
            owners[job_id] = (job.owner_id, job.owner)

    def owner(job_id: int | None) -> str | None:
        if job_id is None or job_id not in owners:
            return None
        owner_id, name = owners[job_id]
        return name if who.may_see_job(owner_id) else None

    def href(job_id: int) -> str | None:
        found = owners.get(job_id)
        return job_link(job_id) if found and who.may_see_job(found[0]) else None

    return render_machine(
        [_picture_board(b, owner(b.job_id)) for b in boards],
        highlight=highlight,
        job_href=href,
        label=label,
    )


def _picture_board(board: BoardInfo, owner: str | None) -> PictureBoard:
    return PictureBoard(
        Triad(*board.triad),
        (board.cabinet, board.frame, board.board),
        board.address,
        board.functioning,
        board.job_id,
        owner,
    )
