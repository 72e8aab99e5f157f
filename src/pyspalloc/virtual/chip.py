"""One chip's state: sparse memory with SV and VCPU structures, heaps, router, cores."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from pyspalloc.virtual.heap import RouterTable, SdramHeap
from pyspalloc.virtual.memory import (
    SDRAM_SIZE,
    SYSRAM_SIZE,
    MemoryBudget,
    Region,
    SparseMemory,
    locate,
)
from pyspalloc.wire.consts import (
    SV_BOOT_SIG,
    SV_IP_ADDR,
    SV_OFFSET,
    SV_P2V_MAP,
    SV_UNIX_TIME,
    VCPU_BASE,
    VCPU_OFFSET,
    VCPU_SIZE,
    CPUState,
)

__all__ = ["CORES", "ChipInfo", "ChipState"]

#: Cores per chip (virtual 0..17; 0 runs SC&MP).
CORES = 18
SYSRAM_PAGE_BITS = 8
#: Where the multicast-table copy (``sv->rtr_copy``) appears in system SDRAM.
RTR_COPY = 0x67A00000
RTR_COPY_SIZE = 1025 * 16
SDRAM_SYS = 0x67800000
P2P_TABLE_OFFSET = 0x10000
DIAG_CONTROL = 0x2C
DIAG_COUNTERS = 0x300
FIXED_ROUTE = 0x84


@dataclass(frozen=True)
class ChipInfo:
    """What a chip knows about its place in the booted machine (job coordinates)."""

    x: int
    y: int
    eth_x: int
    eth_y: int
    ip: bytes
    links: int
    parent_link: int
    width: int
    height: int
    root: bool
    boot_time: int
    cores: int = CORES

    @property
    def is_ethernet(self) -> bool:
        """Whether this chip is its board's Ethernet chip."""
        return self.x == self.eth_x and self.y == self.eth_y


def _sv(info: ChipInfo) -> bytearray:
    sv = bytearray(256)
    struct.pack_into("<HBB", sv, 0x00, (info.x << 8) | info.y, info.height, info.width)
    sv[0x06] = 1
    struct.pack_into("<H", sv, 0x08, (info.eth_x << 8) | info.eth_y)
    sv[0x0A] = 5
    sv[0x0B] = 1 if info.is_ethernet else 0
    struct.pack_into("<I", sv, SV_UNIX_TIME, info.boot_time)
    struct.pack_into("<HH", sv, 0x24, 200, 130)
    struct.pack_into("<I", sv, 0x30, 1)
    sv[0x40] = 1 if info.root else 0
    struct.pack_into("<IIIIII", sv, 0x48, 0xE5000100, 0x60240000, 16384, 0x60000000, 32768, 0)
    struct.pack_into("<I", sv, SV_BOOT_SIG, info.boot_time)
    sv[0x65] = info.links
    cores = bytes(range(info.cores)).ljust(20, b"\xff")
    sv[SV_P2V_MAP : SV_P2V_MAP + len(cores)] = cores
    sv[0xA8:0xBC] = cores
    sv[0xBC] = info.cores
    struct.pack_into(
        "<6I", sv, 0xC0, 0x60240000, 0xE5000100, SDRAM_SYS, VCPU_BASE, 0x67840000, RTR_COPY
    )
    struct.pack_into("<H", sv, 0xE0, 1023)
    sv[SV_IP_ADDR : SV_IP_ADDR + 4] = info.ip
    struct.pack_into("<I", sv, 0xFC, 0x00040000)
    return sv


def _vcpu_page(index: int, boot_time: int, cores: int) -> bytearray:
    """Page ``index`` (256 bytes) of the VCPU area: two VCPU blocks (absent cores DEAD)."""
    page = bytearray(256)
    for half in range(2):
        core = (index - (VCPU_OFFSET >> SYSRAM_PAGE_BITS)) * 2 + half
        if core >= CORES:
            break
        base = half * VCPU_SIZE
        page[base + 45] = core
        if core == 0:
            page[base + 46] = CPUState.RUNNING
            struct.pack_into("<I", page, base + 68, boot_time)
            page[base + 72 : base + 79] = b"scamp-3"
        elif core < cores:
            page[base + 46] = CPUState.IDLE
        struct.pack_into("<I", page, base + 92, 0x00040000)
    return page


class ChipState:
    """Memory, allocators and core states of one chip of a booted machine.

    Parameters
    ----------
    info:
        The chip's place in the machine (used for SV contents and CMD_INFO).
    p2p_table:
        The machine's P2P routing table image (32 KiB), shown at router + 0x10000.
    """

    __slots__ = ("heap", "info", "p2p_table", "router", "router_regs", "sdram", "sysram")

    def __init__(
        self, info: ChipInfo, p2p_table: bytes, budget: MemoryBudget | None = None
    ) -> None:
        self.info = info
        self.p2p_table = p2p_table
        self.sdram = SparseMemory(SDRAM_SIZE, 12, budget=budget)
        self.sysram = SparseMemory(
            SYSRAM_SIZE, SYSRAM_PAGE_BITS, self._initial_sysram, budget=budget
        )
        self.router_regs = SparseMemory(P2P_TABLE_OFFSET, 8, budget=budget)
        self.heap = SdramHeap()
        self.router = RouterTable()

    def release(self) -> None:
        """Forget this chip's memory and give it back to the machine's budget."""
        for memory in (self.sdram, self.sysram, self.router_regs):
            memory.clear()

    def _initial_sysram(self, index: int) -> bytearray | None:
        if index == SV_OFFSET >> SYSRAM_PAGE_BITS:
            return _sv(self.info)
        first = VCPU_OFFSET >> SYSRAM_PAGE_BITS
        if first <= index < first + (CORES * VCPU_SIZE >> SYSRAM_PAGE_BITS):
            return _vcpu_page(index, self.info.boot_time, self.info.cores)
        return None

    # -- memory ---------------------------------------------------------------------

    def read(self, address: int, length: int) -> bytes | None:
        """Read ``length`` bytes, or None if the range is not modelled."""
        where = locate(address, length)
        if where is None:
            return None
        region, offset = where
        if region is Region.SDRAM:
            data = self.sdram.read(offset, length)
            copy_start = RTR_COPY - 0x60000000
            if offset < copy_start + RTR_COPY_SIZE and offset + length > copy_start:
                data = self._overlay_copy(offset, data, copy_start)
            return data
        if region is Region.SYSRAM:
            return self.sysram.read(offset, length)
        if offset >= P2P_TABLE_OFFSET:
            start = offset - P2P_TABLE_OFFSET
            return self.p2p_table[start : start + length]
        return self.router_regs.read(offset, length)

    def _overlay_copy(self, offset: int, data: bytes, copy_start: int) -> bytes:
        table = self.router.copy_table()
        out = bytearray(data)
        lo = max(offset, copy_start)
        hi = min(offset + len(data), copy_start + RTR_COPY_SIZE)
        out[lo - offset : hi - offset] = table[lo - copy_start : hi - copy_start]
        return bytes(out)

    def write(self, address: int, data: bytes) -> bool:
        """Write ``data``; False if the range is not modelled."""
        where = locate(address, len(data))
        if where is None:
            return False
        region, offset = where
        if region is Region.SDRAM:
            self.sdram.write(offset, data)
        elif region is Region.SYSRAM:
            self.sysram.write(offset, data)
        elif offset < P2P_TABLE_OFFSET:
            self._write_router(offset, data)
        return True

    def _write_router(self, offset: int, data: bytes) -> None:
        if offset <= DIAG_CONTROL and offset + len(data) >= DIAG_CONTROL + 4:
            at = DIAG_CONTROL - offset
            (value,) = struct.unpack_from("<I", data, at)
            self.router_regs.write(offset, data)
            # Bits 16-31 reset counters 0-15 (write 1 to clear); bits 0-15 enable them.
            for counter in range(16):
                if value & (1 << (16 + counter)):
                    self.router_regs.write(DIAG_COUNTERS + 4 * counter, bytes(4))
            self.router_regs.write(DIAG_CONTROL, struct.pack("<I", value & 0xFFFF))
            return
        self.router_regs.write(offset, data)

    def fill(self, address: int, word: int, length: int) -> bool:
        """Fill ``length`` bytes with a 32-bit word; False if not modelled."""
        where = locate(address, length)
        if where is None:
            return False
        region, offset = where
        pattern = struct.pack("<I", word)
        if region is Region.SDRAM:
            self.sdram.fill(offset, pattern, length)
        elif region is Region.SYSRAM:
            self.sysram.fill(offset, pattern, length)
        elif offset + length <= P2P_TABLE_OFFSET:
            self.router_regs.fill(offset, pattern, length)
        return True

    @property
    def fixed_route(self) -> int:
        """The fixed-route register."""
        (value,) = struct.unpack("<I", self.router_regs.read(FIXED_ROUTE, 4))
        return int(value)

    @fixed_route.setter
    def fixed_route(self, value: int) -> None:
        self.router_regs.write(FIXED_ROUTE, struct.pack("<I", value & 0xFFFFFFFF))

    # -- cores ----------------------------------------------------------------------

    def core(self, p: int) -> tuple[int, int]:
        """``(cpu_state, app_id)`` of core ``p``."""
        state, app_id = self.sysram.read(VCPU_OFFSET + VCPU_SIZE * p + 46, 2)
        return state, app_id

    def set_core(self, p: int, state: int, app_id: int | None = None) -> None:
        """Set core ``p``'s state (and app id, if given)."""
        base = VCPU_OFFSET + VCPU_SIZE * p + 46
        page = self.sysram.page(base >> SYSRAM_PAGE_BITS)
        at = base & 0xFF
        page[at] = state
        if app_id is not None:
            page[at + 1] = app_id

    def start_app(self, app_id: int, mask: int, wait: bool) -> None:
        """Start an application on the cores in ``mask`` (bit p = core p)."""
        state = CPUState.READY if wait else CPUState.RUNNING
        now = int(time.time())
        for p in range(1, self.info.cores):
            if mask & (1 << p):
                self.set_core(p, state, app_id)
                base = VCPU_OFFSET + VCPU_SIZE * p
                self.sysram.write(base + 68, struct.pack("<I", now))

    def states(self) -> bytes:
        """The cpu_state bytes of cores 0..17."""
        return bytes(self.core(p)[0] for p in range(CORES))

    def count(self, app_id: int, state: int) -> int:
        """Cores 1..17 of ``app_id`` in ``state``."""
        return sum(1 for p in range(1, self.info.cores) if self.core(p) == (state, app_id))
