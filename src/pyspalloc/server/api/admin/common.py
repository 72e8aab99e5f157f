"""What the admin routes share: the ADMIN check before any body, JSON bodies, URLs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from starlette.requests import Request

from pyspalloc.server.api.common import (
    SRV,
    ApiError,
    authenticate_first,
    caller_of,
    ctx_of,
    parse_json,
    srv_url,
)
from pyspalloc.server.auth import Caller
from pyspalloc.server.store import TrustLevel

ADMIN = SRV + "/admin"
TAG = "admin"
#: the largest id a path or body may name (ids are 32-bit in the database)
MAX_ID = 2**31 - 1
#: an id in a path: a bad one is a 400 naming it, not a database error
Id = Annotated[int, Path(ge=0, le=MAX_ID)]


def admin_first(request: Request) -> None:
    """A FastAPI dependency: authenticate (CSRF-checked for cookie sessions) and check
    the ADMIN role before the body is read."""
    authenticate_first(request)
    caller_of(request, TrustLevel.ADMIN)


def admin_of(request: Request) -> Caller:
    """Return the caller, who must be an ADMIN (else 401/403)."""
    return caller_of(request, TrustLevel.ADMIN)


def audit(request: Request, caller: Caller, event: str, **fields: str | float | None) -> None:
    """Write an admin action to the audit log."""
    ctx_of(request).auth.audit(request, caller, event, via="rest", **fields)


def json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body, or 400."""
    value = parse_json(body)
    if not isinstance(value, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return value


def text_bool(body: bytes, what: str) -> bool:
    """Decode a ``text/plain`` ``true``/``false`` body, or 400."""
    text = body.decode("utf-8", errors="replace").strip().lower()
    if text not in ("true", "false"):
        raise ApiError(400, f"{what} must be the text true or false")
    return text == "true"


def admin_url(request: Request, *parts: object) -> str:
    """The absolute URL of an admin resource."""
    return "/".join([srv_url(request) + "/admin", *(str(p) for p in parts)])
