"""Per-chip allocators: the SDRAM heap (CMD_ALLOC 0-2, 6, 7) and multicast router entries."""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["RouterTable", "SdramHeap"]

#: First byte of the user heap's free space (after the 16-byte heap root).
HEAP_START = 0x60240010
#: End of the user heap's free space (an 8-byte sentinel sits before system SDRAM).
HEAP_END = 0x677FFFF8
#: Bytes of the header in front of each block.
BLOCK_HEADER = 8
#: Router entries; entry 0 is reserved.
ROUTER_ENTRIES = 1024


@dataclass
class _Block:
    size: int
    app_id: int
    tag: int


def _take(free: list[list[int]], need: int) -> int | None:
    """First fit: remove ``need`` units from the first big enough interval; return its start."""
    for interval in free:
        start, end = interval
        if end - start >= need:
            interval[0] = start + need
            if interval[0] == end:
                free.remove(interval)
            return start
    return None


def _give(free: list[list[int]], start: int, end: int) -> None:
    """Return ``[start, end)`` to a sorted interval list, merging neighbours."""
    index = 0
    while index < len(free) and free[index][0] < start:
        index += 1
    free.insert(index, [start, end])
    if index + 1 < len(free) and free[index][1] == free[index + 1][0]:
        free[index][1] = free[index + 1][1]
        del free[index + 1]
    if index > 0 and free[index - 1][1] == free[index][0]:
        free[index - 1][1] = free[index][1]
        del free[index]


class SdramHeap:
    """The user SDRAM heap of one chip (first fit, 8-byte headers, tag-retry)."""

    def __init__(self) -> None:
        self._free: list[list[int]] = [[HEAP_START, HEAP_END]]
        self._blocks: dict[int, _Block] = {}
        self._tags: dict[tuple[int, int], int] = {}

    def alloc(self, size: int, app_id: int, tag: int, retry: bool) -> int:
        """Allocate ``size`` bytes; return the block address or 0 on failure.

        A non-zero ``tag`` may be held once per ``app_id``; with ``retry`` the same
        address is returned again if ``size`` equals the stored block size exactly.
        """
        if tag:
            held = self._tags.get((app_id, tag))
            if held is not None:
                return held if retry and self._blocks[held].size == size else 0
        rounded = (size + 3) & ~3
        start = _take(self._free, rounded + BLOCK_HEADER)
        if start is None:
            return 0
        address = start + BLOCK_HEADER
        self._blocks[address] = _Block(rounded, app_id, tag)
        if tag:
            self._tags[(app_id, tag)] = address
        return address

    def free(self, address: int) -> bool:
        """Free the block at ``address``; False if there is none."""
        block = self._blocks.pop(address, None)
        if block is None:
            return False
        if block.tag:
            self._tags.pop((block.app_id, block.tag), None)
        _give(self._free, address - BLOCK_HEADER, address + block.size)
        return True

    def free_app(self, app_id: int) -> int:
        """Free every block of ``app_id``; return how many were freed."""
        mine = [a for a, b in self._blocks.items() if b.app_id == app_id]
        for address in mine:
            self.free(address)
        return len(mine)

    def tag_address(self, app_id: int, tag: int) -> int:
        """Address of the block holding ``(app_id, tag)``, or 0."""
        return self._tags.get((app_id, tag), 0)

    def free_bytes(self) -> int:
        """Total free bytes (headers excluded)."""
        return sum(max(0, e - s - BLOCK_HEADER) for s, e in self._free)

    def largest_free(self) -> int:
        """Largest block that could be allocated now."""
        return max((e - s - BLOCK_HEADER for s, e in self._free), default=0)


_UNUSED_RECORD = struct.pack("<2H3I", 0, 0, 0xFF000000, 0xFFFFFFFF, 0)


class RouterTable:
    """Multicast router entries with the SCAMP entry allocator and the copy table."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[int, int, int, int]] = {}
        self._free: list[list[int]] = [[1, ROUTER_ENTRIES]]
        self._allocations: dict[int, tuple[int, int]] = {}

    def reset(self) -> None:
        """Clear every entry and free the whole table (CMD_RTR op 0)."""
        self.entries = {}
        self._free = [[1, ROUTER_ENTRIES]]
        self._allocations = {}

    def alloc(self, count: int, app_id: int) -> int:
        """Allocate ``count`` consecutive entries; return the first index or 0."""
        if count <= 0:
            return 0
        start = _take(self._free, count)
        if start is None:
            return 0
        self._allocations[start] = (count, app_id)
        return start

    def free(self, entry: int, clear: bool) -> bool:
        """Free the allocation starting at ``entry``."""
        allocation = self._allocations.pop(entry, None)
        if allocation is None:
            return False
        count, _ = allocation
        _give(self._free, entry, entry + count)
        if clear:
            self.clear(entry, count)
        return True

    def free_app(self, app_id: int, clear: bool) -> int:
        """Free every allocation of ``app_id``; return how many entries were freed."""
        mine = [(s, c) for s, (c, a) in self._allocations.items() if a == app_id]
        for start, _ in mine:
            self.free(start, clear)
        if clear:
            for index in [i for i, e in self.entries.items() if e[3] == app_id]:
                del self.entries[index]
        return sum(c for _, c in mine)

    def clear(self, start: int, count: int) -> None:
        """Invalidate ``count`` entries from ``start``."""
        for index in range(start, start + count):
            self.entries.pop(index, None)

    def set(self, index: int, key: int, mask: int, route: int, app_id: int) -> None:
        """Load one entry."""
        self.entries[index] = (key, mask, route & 0xFFFFFF, app_id)

    def largest_free(self) -> int:
        """Largest block of free entries."""
        return max((e - s for s, e in self._free), default=0)

    def copy_table(self) -> bytes:
        """The ``sv->rtr_copy`` image: 1025 records ``{next, free, route, key, mask}``."""
        records = []
        for index in range(ROUTER_ENTRIES + 1):
            entry = self.entries.get(index)
            if entry is None:
                records.append(_UNUSED_RECORD)
            else:
                key, mask, route, app_id = entry
                records.append(struct.pack("<2H3I", 0, 0x8000 | app_id, route, key, mask))
        return b"".join(records)
