"""SpiNNaker protocol constants: the one home of ports, SV and VCPU addresses, CPU states
and IP-tag bits.

Both sides use these: the client's operations (:mod:`pyspalloc.transceiver`) and the
virtual boards that answer them (:mod:`pyspalloc.virtual`), so the two cannot disagree.
Pure values; nothing here does I/O.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "BOOT_PORT",
    "CMD_COUNT",
    "FIRST_TRANSIENT_IPTAG",
    "IPTAG_REVERSE",
    "IPTAG_SET_FLAGS_SHIFT",
    "IPTAG_SET_REVERSE",
    "IPTAG_SET_STRIP",
    "IPTAG_SET_USE_SENDER",
    "IPTAG_STRIP",
    "IPTAG_TRANSIENT",
    "IPTAG_USE_SENDER",
    "IPTAG_VALID",
    "N_IPTAGS",
    "SCP_PORT",
    "SV_BASE",
    "SV_BOOT_SIG",
    "SV_CLOCK_DRIFT",
    "SV_IOBUF_SIZE",
    "SV_IP_ADDR",
    "SV_OFFSET",
    "SV_P2P_DIMS",
    "SV_P2V_MAP",
    "SV_RTR_COPY",
    "SV_UNIX_TIME",
    "SYSRAM_BASE",
    "VCPU_BASE",
    "VCPU_OFFSET",
    "VCPU_SIZE",
    "CPUState",
    "IPTagCommand",
]

# --- ports -------------------------------------------------------------------------

#: UDP port of SC&MP on a board (and of a BMP).
SCP_PORT: Final = 17893
#: UDP port boards listen on for boot packets.
BOOT_PORT: Final = 54321

# --- system RAM: the SV struct and the VCPU blocks ----------------------------------

#: System RAM of a chip (buffered alias; ``0xF5000000`` is the unbuffered one).
SYSRAM_BASE: Final = 0xE5000000
#: Where the system variables (SV struct) sit in system RAM.
SV_OFFSET: Final = 0x7F00
#: The SV struct through the unbuffered alias, as spinnman reads it.
SV_BASE: Final = 0xF5000000 + SV_OFFSET
#: Offsets of fields of the SV struct.
SV_P2P_DIMS: Final = 0x02
SV_UNIX_TIME: Final = 0x1C
SV_CLOCK_DRIFT: Final = 0x38
SV_IOBUF_SIZE: Final = 0x50
SV_BOOT_SIG: Final = 0x5C
SV_P2V_MAP: Final = 0x94
SV_RTR_COPY: Final = 0xD4
SV_IP_ADDR: Final = 0xF0
#: Where the VCPU blocks (one per core) sit in system RAM, and the size of one.
VCPU_OFFSET: Final = 0x7000
VCPU_BASE: Final = SYSRAM_BASE + VCPU_OFFSET
VCPU_SIZE: Final = 128

#: CMD_COUNT (not in :class:`~pyspalloc.wire.scp.SCPCommand`): count cores in a state.
CMD_COUNT: Final = 15


class CPUState(IntEnum):
    """The ``cpu_state`` byte of a core's VCPU block."""

    DEAD = 0
    POWERED_DOWN = 1
    RUN_TIME_EXCEPTION = 2
    WATCHDOG = 3
    INITIALISING = 4
    READY = 5
    C_MAIN = 6
    RUNNING = 7
    SYNC0 = 8
    SYNC1 = 9
    PAUSED = 10
    FINISHED = 11
    CPU_STATE_12 = 12
    CPU_STATE_13 = 13
    CPU_STATE_14 = 14
    IDLE = 15


# --- IP tags -----------------------------------------------------------------------

#: IP tags an Ethernet chip has: 0..7 fixed, 8..15 the transient pool.
N_IPTAGS: Final = 16
FIRST_TRANSIENT_IPTAG: Final = 8


class IPTagCommand(IntEnum):
    """CMD_IPTAG operations (bits 16..19 of arg1)."""

    NEW = 0
    SET = 1
    GET = 2
    CLEAR = 3
    TTO = 4


#: CMD_IPTAG SET arg1 bits: strip the SDP header, a reverse tag, use the sender's address.
IPTAG_SET_STRIP: Final = 1 << 28
IPTAG_SET_REVERSE: Final = 1 << 29
IPTAG_SET_USE_SENDER: Final = 1 << 30
#: The SET bits shifted right by this are the matching entry flags below.
IPTAG_SET_FLAGS_SHIFT: Final = 20
#: The ``flags`` half-word of a tag-table entry (CMD_IPTAG GET).
IPTAG_VALID: Final = 0x8000
IPTAG_TRANSIENT: Final = 0x4000
IPTAG_USE_SENDER: Final = 0x0400
IPTAG_REVERSE: Final = 0x0200
IPTAG_STRIP: Final = 0x0100
