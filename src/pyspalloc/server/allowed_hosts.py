"""Allowed ``Host`` names: a forged ``Host`` cannot steer the URLs the service hands out.

The service builds absolute URLs (job, proxy, machine references) from the request's
``Host``; :class:`AllowedHostsMiddleware` refuses (HTTP 400, websocket close 1008) a
request naming any other host than those of :func:`allowed_names`, or the address the
connection actually arrived on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["AllowedHostsMiddleware", "allowed_names", "host_name"]

_LOCAL = ("localhost", "127.0.0.1", "::1")
_WILDCARD = ("", "0.0.0.0", "::")


def host_name(host: str) -> str:
    """Return the name part of a ``Host`` value, lower case, without port or brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def allowed_names(bind: str, extra: Iterable[str]) -> frozenset[str]:
    """Return the host names a request may use.

    Parameters
    ----------
    bind:
        The address the service listens on; a wildcard (``0.0.0.0``, ``::``) adds this
        host's own names.
    extra:
        Further names (``serve --allowed-host``).
    """
    names = {*_LOCAL, *(host_name(name) for name in extra)}
    if bind in _WILDCARD:
        names.update(host_name(n) for n in (socket.gethostname(), socket.getfqdn()))
    else:
        names.add(host_name(bind))
    return frozenset(n for n in names if n)


class AllowedHostsMiddleware:
    """Refuses requests whose ``Host`` is not allowed (see the module)."""

    def __init__(self, app: ASGIApp, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    def _allowed(self, scope: Scope) -> bool:
        host = next((v for k, v in scope.get("headers", ()) if k.lower() == b"host"), None)
        if host is None:  # HTTP/1.0 without Host: the URLs use the server's address
            return True
        name = host_name(bytes(host).decode("latin-1"))
        server = scope.get("server")
        arrived_on = host_name(str(server[0])) if server else None
        return name in self.names or name == arrived_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self._allowed(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
        else:
            body = b"bad request: Host is not an allowed name of this service"
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"text/plain; charset=UTF-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
