"""pyspalloc: a complete Spalloc in Python.

The client API mirrors ``spinnman.spalloc``; the service is wire-compatible with the
Java Spalloc server; the virtual machine speaks the real SpiNNaker UDP protocols.
"""

from pyspalloc.client import (
    AbstractSpallocClient,
    AllocationSettings,
    SpallocClient,
    SpallocEIEIOConnection,
    SpallocEIEIOListener,
    SpallocJob,
    SpallocMachine,
    SpallocProxiedConnection,
    SpallocState,
    allocate_job,
    is_server_address,
)
from pyspalloc.exceptions import SpallocBoardUnavailableException, SpallocException

__version__ = "0.1.0"

__all__ = [
    "AbstractSpallocClient",
    "AllocationSettings",
    "SpallocBoardUnavailableException",
    "SpallocClient",
    "SpallocEIEIOConnection",
    "SpallocEIEIOListener",
    "SpallocException",
    "SpallocJob",
    "SpallocMachine",
    "SpallocProxiedConnection",
    "SpallocState",
    "__version__",
    "allocate_job",
    "is_server_address",
]
