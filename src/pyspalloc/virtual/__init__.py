"""Virtual SpiNN-5 boards and BMPs on loopback addresses, reached only over UDP.

Each board listens on its own address (SC&MP on 17893, boot on 54321); each frame's BMP
on its own. Everything runs on one asyncio loop in a daemon thread.
"""

from pyspalloc.virtual.bmp import VirtualBMP
from pyspalloc.virtual.board import VirtualBoard
from pyspalloc.virtual.machine import VirtualMachine

__all__ = ["VirtualBMP", "VirtualBoard", "VirtualMachine"]
