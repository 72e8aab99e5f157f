"""Request body limits: an oversize body is refused (413) before it is buffered.

:class:`BodyLimitMiddleware` answers 413 at once when ``Content-Length`` exceeds the limit
of the route, and counts the bytes of a body without one (chunked) as the application
reads it, raising :class:`BodyTooLarge` past the limit. The limit is
:data:`MEMORY_LIMIT` for ``POST jobs/{id}/memory`` (the largest memory write) and
:data:`SMALL_LIMIT` for everything else (JSON and forms). A response sent before the
body was read asks the client to close the connection, so the rest is never drained.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pyspalloc.server.machine_ops import MAX_TRANSFER

__all__ = ["MEMORY_LIMIT", "SMALL_LIMIT", "BodyLimitMiddleware", "BodyTooLarge", "body_limit"]

#: largest JSON or form body (bytes)
SMALL_LIMIT = 64 * 1024
#: largest ``POST jobs/{id}/memory`` body: one chip's SDRAM
MEMORY_LIMIT = MAX_TRANSFER
#: an unread rest of at most this many bytes is drained; more closes the connection
_DRAIN = 64 * 1024
_MEMORY_PATH = re.compile(r"^/spalloc/srv/spalloc/jobs/[^/]+/memory$")
#: largest machine-definition import (REST or the admin web form)
IMPORT_LIMIT = 4 * 1024 * 1024
_IMPORT_PATHS = ("/spalloc/srv/spalloc/admin/import", "/spalloc/system/admin/machines/import")


class BodyTooLarge(Exception):
    """The request body exceeds ``limit`` bytes (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body too large: at most {limit} bytes")
        self.limit = limit


def body_limit(method: str, path: str) -> int:
    """Return the largest body accepted for ``method`` on (normalised) ``path``."""
    if method == "POST" and _MEMORY_PATH.match(path):
        return MEMORY_LIMIT
    if method == "POST" and path in _IMPORT_PATHS:
        return IMPORT_LIMIT
    return SMALL_LIMIT


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


async def _refuse(send: Send, status: int, message: str) -> None:
    body = message.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=UTF-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuses oversize request bodies before they are read (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        raw_length = _header(scope, b"content-length")
        length: int | None = None
        if raw_length is not None:
            try:
                length = int(raw_length)
            except ValueError:
                length = -1
            if length < 0:
                await _refuse(send, 400, "bad request: Content-Length")
                return
            if length > limit:
                await _refuse(send, 413, str(BodyTooLarge(limit)))
                return
        received = 0
        # without Content-Length or Transfer-Encoding there is no body
        finished = length == 0 or (length is None and _header(scope, b"transfer-encoding") is None)

        async def counted() -> Message:
            nonlocal received, finished
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                finished = not message.get("more_body", False)
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not finished:
                unread = None if length is None else length - received
                if unread is None or unread > _DRAIN:
                    message["headers"] = [
                        *(h for h in message.get("headers", []) if h[0].lower() != b"connection"),
                        (b"connection", b"close"),
                    ]
            await send(message)

        await self.app(scope, counted, closing)
