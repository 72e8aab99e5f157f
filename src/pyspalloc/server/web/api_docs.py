"""The API documentation page: Swagger UI served from the service itself.

FastAPI's own docs page loads Swagger UI from a CDN; this one serves the assets of the
``swagger-ui-bundle`` package under :data:`ASSETS` and starts Swagger UI with a script of
the service's own (no inline script), so the page loads nothing from other sites.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped, unused-ignore]

from pyspalloc.server.security_headers import CSP

__all__ = ["ASSETS", "DOCS", "install_api_docs"]

#: the documentation page
DOCS = "/spalloc/srv/swagger"
#: Swagger UI's scripts and styles
ASSETS = "/spalloc/srv/swagger-ui"
#: Swagger UI styles elements from its scripts: inline styles allowed, nothing else
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="/spalloc/system/resources/swagger-init.js"></script>
</body></html>
"""


def install_api_docs(app: FastAPI) -> None:
    """Serve the documentation page at :data:`DOCS` (the app's ``docs_url`` is off)."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(DOCS, include_in_schema=False)
    def api_docs(_: Request) -> Response:
        page = _PAGE.format(title=app.title, assets=ASSETS, openapi=app.openapi_url)
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})
