"""Helpers shared by the REST routes: errors, parameters, URLs, JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from pyspalloc.server.auth import Caller, Forbidden
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import TrustLevel

SRV = "/spalloc/srv/spalloc"


class ApiError(Exception):
    """An error answered as ``text/plain`` with the given status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> ApiError:
    """Return a 400 error with ``message``."""
    return ApiError(400, message)


def no_such_job() -> ApiError:
    """Return the 404 for an unknown or invisible job."""
    return ApiError(404, "no such job")


def ctx_of(conn: HTTPConnection) -> ServiceContext:
    """Return the service context of the app serving ``conn``."""
    ctx: ServiceContext = conn.app.state.ctx
    return ctx


def caller_of(request: Request, role: TrustLevel = TrustLevel.READER) -> Caller:
    """Authenticate the request and check that the caller has ``role``."""
    caller = ctx_of(request).auth.authenticate(request, request.method)
    if caller.user.trust < role:
        raise Forbidden()
    return caller


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return compact JSON."""
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def text_response(body: str, status: int = 200) -> Response:
    """Return ``text/plain``."""
    return Response(body, status_code=status, media_type="text/plain; charset=UTF-8")


def iso(timestamp: float | None) -> str | None:
    """Format epoch seconds as ISO-8601 UTC with whole seconds."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def base_url(conn: HTTPConnection) -> str:
    """Return ``scheme://host[:port]`` of the request as the client sees it."""
    scheme = conn.url.scheme
    if scheme in ("ws", "wss"):
        scheme = "https" if scheme == "wss" else "http"
    if "https" in conn.headers.get("x-forwarded-proto", "").lower():
        scheme = "https"
    host = conn.headers.get("host") or conn.url.netloc
    return f"{scheme}://{host}"


def srv_url(conn: HTTPConnection) -> str:
    """Return the absolute REST root without a trailing slash."""
    return base_url(conn) + SRV


def parse_bool(value: str | None, default: bool = False) -> bool:
    """Parse a query boolean like Java's ``Boolean.valueOf`` (case-insensitive)."""
    if value is None:
        return default
    return value.strip().lower() == "true"


def int_param(request: Request, name: str, default: int | None = None) -> int:
    """Return an integer query parameter, or 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise bad(f"{name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{name} must be an integer") from None
    if not -(2**32) <= value <= 2**32:
        raise bad(f"{name} is out of range")
    return value


def client_host(conn: HTTPConnection) -> str | None:
    """Return the remote address of the request."""
    return conn.client.host if conn.client else None
