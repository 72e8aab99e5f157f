"""Re-export of :mod:`tests.server.web.helpers` (the web UI tests moved there)."""

from tests.server.web.helpers import CSRF_INPUT, SRV, SYSTEM, TIMEOUT, Browser, polygons

__all__ = ["CSRF_INPUT", "SRV", "SYSTEM", "TIMEOUT", "Browser", "polygons"]
