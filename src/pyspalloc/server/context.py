"""The objects a running service shares between its routes and workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspalloc.server.auth import Authenticator
from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.controller import JobOperations
from pyspalloc.server.events import EventHub
from pyspalloc.server.lifecycle import Lifecycle
from pyspalloc.server.store import Store

if TYPE_CHECKING:
    from pyspalloc.geometry import MachineDefinition


@dataclass
class ServiceContext:
    """Everything a request handler needs; kept in ``app.state.ctx``."""

    config: ServiceConfig
    store: Store
    auth: Authenticator
    events: EventHub
    lifecycle: Lifecycle
    machines: dict[str, MachineDefinition]
    operations: JobOperations | None
