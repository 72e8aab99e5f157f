"""Pure byte formats: proxy frames, SDP/SCP, boot and EIEIO.

Nothing here does I/O. Every decoder raises only :class:`WireFormatError`.
"""

from pyspalloc.wire.errors import WireFormatError

__all__ = ["WireFormatError"]
