"""The REST root: service description (web-api.md §4.1)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from pyspalloc.server.api.common import SRV, ctx_of, json_response, srv_url
from pyspalloc.server.auth import CSRF_HEADER
from pyspalloc.server.store import TrustLevel

router = APIRouter()


@router.get(SRV)
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
