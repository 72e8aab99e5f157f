"""Talking to SpiNNaker boards: one SCP engine, UDP connections and board operations."""

from pyspalloc.transceiver.connections import Connection, UDPConnection
from pyspalloc.transceiver.engine import EngineOptions, scp_burst, scp_call, scp_stream

__all__ = [
    "Connection",
    "EngineOptions",
    "UDPConnection",
    "scp_burst",
    "scp_call",
    "scp_stream",
]
