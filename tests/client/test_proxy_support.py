"""Temporary re-export of :mod:`tests.client.proxy_support` (renamed) for branches
written before the rename; it holds no tests. Remove once all are merged."""

from tests.client.proxy_support import (
    PASSWORD,
    USER,
    ServiceWithMachine,
    fresh_job,
    job,
    proxy_client,
    proxy_service,
    ready_job,
    start_test_service,
    virtual_board,
)
from tests.support.waiting import eventually

__all__ = [
    "PASSWORD",
    "USER",
    "ServiceWithMachine",
    "eventually",
    "fresh_job",
    "job",
    "proxy_client",
    "proxy_service",
    "ready_job",
    "start_test_service",
    "virtual_board",
]
