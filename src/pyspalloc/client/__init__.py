"""The Spalloc client: the API of ``spinnman.spalloc``.

The main class is :class:`SpallocClient`; it logs in, lists machines and jobs and
creates :class:`SpallocJob` handles. A job reaches its boards through the proxy
websocket: :mod:`pyspalloc.client.proxy`.
"""

from pyspalloc.client.client import AbstractSpallocClient, SpallocClient
from pyspalloc.client.description import GroupQuota, JobAllocation, JobDescription
from pyspalloc.client.environment import AllocationSettings, allocate_job
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.machine import SpallocMachine
from pyspalloc.client.proxy.connections import SpallocEIEIOConnection
from pyspalloc.client.proxy.listeners import SpallocEIEIOListener
from pyspalloc.client.proxy.proxied import SpallocProxiedConnection
from pyspalloc.client.session import Session, SessionAware, SpallocHTTPError
from pyspalloc.client.state import SpallocState
from pyspalloc.client.utils import ServiceVersion, is_server_address

__all__ = [
    "AbstractSpallocClient",
    "AllocationSettings",
    "GroupQuota",
    "JobAllocation",
    "JobDescription",
    "ServiceVersion",
    "Session",
    "SessionAware",
    "SpallocClient",
    "SpallocEIEIOConnection",
    "SpallocEIEIOListener",
    "SpallocHTTPError",
    "SpallocJob",
    "SpallocMachine",
    "SpallocProxiedConnection",
    "SpallocState",
    "allocate_job",
    "is_server_address",
]
