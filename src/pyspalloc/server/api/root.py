"""The REST root: service description (web-api.md §4.1)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from pyspalloc.server.api.common import (
    AUTH,
    SRV,
    ApiError,
    caller_of,
    ctx_of,
    json_response,
    responses,
    srv_url,
    text_response,
)
from pyspalloc.server.auth import CSRF_HEADER
from pyspalloc.server.store import TrustLevel

router = APIRouter()


@router.get(SRV, responses=responses(302, 401))
def describe_service(request: Request) -> Response:
    """Return the version, the machine and job collection URLs, and the CSRF data."""
    ctx = ctx_of(request)
    caller = ctx.auth.authenticate(request, "GET")
    session = ctx.auth.ensure_session(request, caller)
    major, minor, revision = ctx.config.version
    body: dict[str, object] = {
        "version": {"major-version": major, "minor-version": minor, "revision": revision}
    }
    if caller.user.trust >= TrustLevel.READER:
        body["jobs-ref"] = f"{srv_url(request)}/jobs"
        body["machines-ref"] = f"{srv_url(request)}/machines"
    body["csrf-header"] = CSRF_HEADER
    body["csrf-token"] = session.csrf
    return json_response(body)


@router.get(
    SRV + "/emergencyStop",
    response_class=PlainTextResponse,
    responses=responses(400, *AUTH, 404),
)
def emergency_stop(request: Request) -> Response:
    """Destroy every job and halt allocation (ADMIN, and the configured command code)."""
    caller = caller_of(request, TrustLevel.ADMIN)
    ctx = ctx_of(request)
    expected = ctx.config.emergency_code
    if not expected:
        raise ApiError(404, "not found")
    given = request.query_params.get("commandCode", "")
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise ApiError(400, "commandCode does not match")
    ctx.auth.audit(request, caller, "emergency_stop")
    ctx.lifecycle.emergency_stop()
    return text_response("ok")
