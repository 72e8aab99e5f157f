"""Free loopback addresses: TCP ports for services, ``127.1.N.0`` bases for virtual machines.

Virtual machines take a base picked at random among the N whose BMP and first board
addresses are free (other test runs on the machine may hold some).
"""

from __future__ import annotations

import random
import socket

from pyspalloc.wire.consts import SCP_PORT


def free_virtual_base(lo: int = 150, hi: int = 250) -> str:
    """A ``127.1.N.0`` base (``lo <= N < hi``) whose BMP and first boards are free now."""
    for _ in range(60):
        net = random.randrange(lo, hi)
        try:
            for host in (f"127.1.{net}.0", f"127.1.{net}.1", f"127.1.{net}.9"):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.bind((host, SCP_PORT))
        except OSError:
            continue
        return f"127.1.{net}.0"
    raise RuntimeError("no free 127.1.N.0 address range for a virtual machine")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
