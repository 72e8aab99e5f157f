"""pyspalloc: a complete Spalloc in Python.

The client API mirrors ``spinnman.spalloc``; the service is wire-compatible with the
Java Spalloc server; the virtual machine speaks the real SpiNNaker UDP protocols.
"""

from pyspalloc.client import (
    AbstractSpallocClient,
    SpallocClient,
    SpallocEIEIOConnection,
    SpallocEIEIOListener,
    SpallocJob,
    SpallocMachine,
    SpallocProxiedConnection,
    SpallocState,
    is_server_address,
)
from pyspalloc.exceptions import SpallocException

__version__ = "0.1.0"

__all__ = [
    "AbstractSpallocClient",
    "SpallocClient",
    "SpallocEIEIOConnection",
    "SpallocEIEIOListener",
    "SpallocException",
    "SpallocJob",
    "SpallocMachine",
    "SpallocProxiedConnection",
    "SpallocState",
    "__version__",
    "is_server_address",
]
