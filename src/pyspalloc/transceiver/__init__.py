"""Talking to SpiNNaker boards: one SCP engine, UDP connections and board operations.

* :mod:`.connections`: the :class:`Connection` protocol and :class:`UDPConnection`.
* :mod:`.engine`: :func:`scp_stream` / :func:`scp_burst` / :func:`scp_call`, the one
  windowed SCP engine everything else calls, configured by one :class:`EngineOptions`
  (``options.once()`` for commands that must not run twice, ``options.slow(t)``).
* :mod:`.memory`, :mod:`.discovery`, :mod:`.tags`, :mod:`.router`, :mod:`.cpu`,
  :mod:`.sdram`: operations as functions of a connection.
* :mod:`.transceiver`: :class:`Transceiver`, which routes them over several boards;
  :mod:`.factory`: :func:`create_transceiver` for a board's IP address.
* :mod:`.boot`: the boot image and boot packets; :mod:`.boot_image`: which image a
  client boots with; :mod:`.bmp`: BMP power and FPGA links.
"""

from pyspalloc.transceiver.boot import boot_board, boot_image, wait_until_booted
from pyspalloc.transceiver.connections import Connection, UDPConnection
from pyspalloc.transceiver.cpu import CPUInfo, Signal
from pyspalloc.transceiver.engine import EngineOptions, scp_burst, scp_call, scp_stream
from pyspalloc.transceiver.factory import create_transceiver
from pyspalloc.transceiver.machine_info import ChipInfo, MachineInfo, VersionInfo
from pyspalloc.transceiver.router import MulticastRoute, RouterDiagnostics
from pyspalloc.transceiver.tags import IPTag, ReverseIPTag
from pyspalloc.transceiver.transceiver import Transceiver
from pyspalloc.wire.consts import CPUState

__all__ = [
    "CPUInfo",
    "CPUState",
    "ChipInfo",
    "Connection",
    "EngineOptions",
    "IPTag",
    "MachineInfo",
    "MulticastRoute",
    "ReverseIPTag",
    "RouterDiagnostics",
    "Signal",
    "Transceiver",
    "UDPConnection",
    "VersionInfo",
    "boot_board",
    "boot_image",
    "create_transceiver",
    "scp_burst",
    "scp_call",
    "scp_stream",
    "wait_until_booted",
]
