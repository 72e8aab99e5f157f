"""The v1 protocol (JSON lines over TCP) of the classic ``spalloc`` clients.

Off by default; ``pyspalloc serve --v1-port PORT --v1-user NAME`` turns it on. v1 jobs
are ordinary jobs of the configured user (see docs/compatibility.md, "v1 protocol").
"""

from pyspalloc.server.v1.listener import V1Listener, start_v1
from pyspalloc.server.v1.options import V1Options

__all__ = ["V1Listener", "V1Options", "start_v1"]
