"""Security headers on every HTTP response; a Content-Security-Policy on HTML.

Every response says ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
``Referrer-Policy: same-origin`` (and ``Strict-Transport-Security`` when serving TLS);
HTML also gets :data:`CSP`: scripts, styles, images and connections from the service
only, no plugins, no framing, forms posted only to the service.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "HSTS", "SecurityHeadersMiddleware"]

#: the Content-Security-Policy of HTML pages (the API docs page too)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
#: HTTPS only, for a year
HSTS = "max-age=31536000"

_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeadersMiddleware:
    """Adds the headers of the module to every HTTP response.

    Parameters
    ----------
    app:
        The application.
    tls:
        Whether the service speaks HTTPS (adds HSTS).
    """

    def __init__(self, app: ASGIApp, tls: bool) -> None:
        self.app = app
        self.extra = [*_COMMON, *([(b"strict-transport-security", HSTS.encode())] if tls else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.extra if k not in names]
                content_type = next(
                    (v for k, v in headers if k.lower() == b"content-type"), b""
                ).lower()
                if content_type.startswith(b"text/html") and (
                    b"content-security-policy" not in names
                ):
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
