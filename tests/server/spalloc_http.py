"""Temporary re-export (see tests/server/conftest.py): the service tests' old client."""

from tests.server.service_support import SERVICE_TIMEOUT as TIMEOUT
from tests.support.http_client import CSRF_INPUT, Http

__all__ = ["CSRF_INPUT", "TIMEOUT", "Client"]


class Client(Http):
    """``Http`` with the service tests' 40 s HTTP timeout."""

    def __init__(self, base: str) -> None:
        super().__init__(base, timeout=TIMEOUT)
