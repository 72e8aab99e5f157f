"""Helpers shared by the REST routes: errors, parameters, URLs, JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from pyspalloc.server.auth import Caller, Forbidden
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import TrustLevel

SRV = "/spalloc/srv/spalloc"

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_STATUSES: dict[int, dict[str, Any]] = {
    202: {"description": "Accepted: the change proceeds in the background (no body)"},
    204: {"description": "No content"},
    302: {
        "description": "Not logged in, browser request (Accept: text/html): "
        "redirect to the login page"
    },
    400: {"description": "Bad request; the message names the field or parameter", "content": _TEXT},
    401: {
        "description": "Not logged in (or the session expired, on a read); "
        "WWW-Authenticate offers Basic and Bearer",
        "content": _TEXT,
    },
    403: {
        "description": "`computer says no` (role too low) or "
        "`invalid or missing CSRF token` (writes, including with an expired session)",
        "content": _TEXT,
    },
    404: {"description": "Not found (`no such job`, `no such machine`, ...)", "content": _TEXT},
    409: {
        "description": "Conflict: the thing exists already, or is still in use",
        "content": _TEXT,
    },
    410: {"description": "`no such job`: the job vanished during a long poll", "content": _TEXT},
    413: {
        "description": "`request body too large: at most <n> bytes` (64 KiB for JSON; "
        "128 MiB for a memory write); refused before the body is read",
        "content": _TEXT,
    },
    429: {
        "description": "`too many live jobs (at most N per user)`: the owner's live-job limit",
        "content": _TEXT,
    },
    500: {"description": "`unexpected server problem: <Kind>: <message>`", "content": _TEXT},
}
AUTH = (302, 401, 403)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses`` of a route for the statuses it answers besides
    its main one (error bodies are ``text/plain``)."""
    return {status: dict(_STATUSES[status]) for status in statuses}


def strip_validation_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop FastAPI's automatic 422 from an OpenAPI document: the service answers
    request validation errors with 400 (``bad request: <where>``), never 422."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if "components" in schema and not schemas:
        schema["components"].pop("schemas", None)
        if not schema["components"]:
            del schema["components"]
    return schema


def document_statuses(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document without the 422s FastAPI adds to every route with
    parameters (see :func:`strip_validation_errors`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return strip_validation_errors(generate())

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


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


_CALLER = "caller"


def authenticate_first(request: Request) -> None:
    """Authenticate the request (and check CSRF) from its headers alone.

    A FastAPI dependency of every route that reads a body: it runs before the body is
    read, so an anonymous or cross-site request is refused without receiving it.
    :func:`caller_of` then reuses the result.
    """
    caller = ctx_of(request).auth.authenticate(request, request.method)
    request.scope.setdefault("state", {})[_CALLER] = caller


def caller_of(request: Request, role: TrustLevel = TrustLevel.READER) -> Caller:
    """Authenticate the request (once) and check that the caller has ``role``."""
    caller = request.scope.get("state", {}).get(_CALLER)
    if not isinstance(caller, Caller):
        caller = ctx_of(request).auth.authenticate(request, request.method)
    if caller.user.trust < role:
        raise Forbidden()
    return caller


def parse_json(body: bytes) -> Any:
    """Decode a JSON request body (empty: ``None``), or 400."""
    try:
        return json.loads(body.decode("utf-8") or "null")
    except (ValueError, UnicodeDecodeError):
        raise bad("request body is not valid JSON") from None
    except RecursionError:
        raise bad("request body is not valid JSON: nested too deeply") from None


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
    scheme = conn.scope.get("scheme", "http")  # what conn.url would say, without parsing
    if scheme in ("ws", "wss"):
        scheme = "https" if scheme == "wss" else "http"
    headers = conn.headers
    if "https" in headers.get("x-forwarded-proto", "").lower():
        scheme = "https"
    host = headers.get("host") or conn.url.netloc
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
