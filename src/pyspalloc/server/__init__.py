"""The Spalloc service: REST API, login, job lifecycle, persistence and proxy.

``start_service(config)`` runs it in-process (see :mod:`pyspalloc.server.runner`);
``create_app(config)`` builds the ASGI application (see :mod:`pyspalloc.server.app`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunningService", "ServiceConfig", "create_app", "start_service"]


def __getattr__(name: str) -> Any:
    if name in ("start_service", "RunningService"):
        from pyspalloc.server import runner

        return getattr(runner, name)
    if name == "create_app":
        from pyspalloc.server.app import create_app

        return create_app
    if name == "ServiceConfig":
        from pyspalloc.server.config import ServiceConfig

        return ServiceConfig
    raise AttributeError(name)
