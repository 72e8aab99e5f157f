"""Sparse chip memory: pages are made on first write, never-written bytes read as zero.

Addresses are folded onto three regions (buffered and unbuffered aliases share storage):
SDRAM ``0x6.../0x7...``, System RAM ``0xE5.../0xF5...`` and the router ``0xE1.../0xF1...``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

__all__ = [
    "ROUTER_SIZE",
    "SDRAM_SIZE",
    "SYSRAM_SIZE",
    "Region",
    "SparseMemory",
    "locate",
]

SDRAM_BASE = 0x60000000
SDRAM_SIZE = 128 * 1024 * 1024
SYSRAM_BASE = 0xE5000000
SYSRAM_SIZE = 32 * 1024
ROUTER_BASE = 0xE1000000
#: Router registers (64 KiB) then the P2P table (8192 words).
ROUTER_SIZE = 0x18000


class Region(IntEnum):
    """The memory regions a chip models."""

    SDRAM = 0
    SYSRAM = 1
    ROUTER = 2


def locate(address: int, length: int) -> tuple[Region, int] | None:
    """Fold ``address`` onto a region; None if ``[address, address+length)`` is not modelled.

    Parameters
    ----------
    address:
        A buffered or unbuffered chip address.
    length:
        Number of bytes accessed (the whole range must lie in one region).
    """
    top = address >> 28
    if top in (6, 7):
        offset = address - (SDRAM_BASE if top == 6 else SDRAM_BASE + 0x10000000)
        if offset + length <= SDRAM_SIZE:
            return Region.SDRAM, offset
        return None
    if top in (0xE, 0xF):
        base = address & 0x0FFFFFFF
        if base >= 0x05000000 and base - 0x05000000 + length <= SYSRAM_SIZE:
            return Region.SYSRAM, base - 0x05000000
        if base >= 0x01000000 and base - 0x01000000 + length <= ROUTER_SIZE:
            return Region.ROUTER, base - 0x01000000
    return None


class SparseMemory:
    """Byte storage in pages of ``2**page_bits`` bytes, created on first touch.

    Parameters
    ----------
    size:
        Bytes addressable (offsets ``0 .. size-1``).
    page_bits:
        log2 of the page size.
    initial:
        Optional function giving the initial contents of page ``index``; without it
        (or when it returns None) new pages are zero-filled.
    """

    __slots__ = ("_initial", "_mask", "_page", "_shift", "pages", "size")

    def __init__(
        self,
        size: int,
        page_bits: int,
        initial: Callable[[int], bytearray | None] | None = None,
    ) -> None:
        self.size = size
        self._shift = page_bits
        self._page = 1 << page_bits
        self._mask = self._page - 1
        self._initial = initial
        self.pages: dict[int, bytearray] = {}

    def _make(self, index: int) -> bytearray:
        page = self._initial(index) if self._initial is not None else None
        if page is None:
            page = bytearray(self._page)
        self.pages[index] = page
        return page

    def page(self, index: int) -> bytearray:
        """Return page ``index``, creating it if needed."""
        page = self.pages.get(index)
        return page if page is not None else self._make(index)

    def read(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset``."""
        index = offset >> self._shift
        start = offset & self._mask
        if start + length <= self._page:
            page = self.pages.get(index)
            if page is None:
                if self._initial is None:
                    return bytes(length)
                page = self._make(index)
            return bytes(page[start : start + length])
        out = bytearray()
        while length > 0:
            chunk = min(length, self._page - start)
            page = self.pages.get(index)
            if page is None and self._initial is not None:
                page = self._make(index)
            out += page[start : start + chunk] if page is not None else bytes(chunk)
            length -= chunk
            index += 1
            start = 0
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset``."""
        index = offset >> self._shift
        start = offset & self._mask
        length = len(data)
        if start + length <= self._page:
            page = self.pages.get(index)
            if page is None:
                page = self._make(index)
            page[start : start + length] = data
            return
        view = memoryview(data)
        done = 0
        while done < length:
            chunk = min(length - done, self._page - start)
            self.page(index)[start : start + chunk] = view[done : done + chunk]
            done += chunk
            index += 1
            start = 0

    def fill(self, offset: int, word: bytes, length: int) -> None:
        """Repeat the 4-byte ``word`` over ``length`` bytes from ``offset``.

        Whole pages filled with zeros are dropped instead of stored (when the memory
        has no initial contents), so clearing large areas stays cheap.
        """
        end = offset + length
        while offset < end:
            index = offset >> self._shift
            start = offset & self._mask
            chunk = min(end - offset, self._page - start)
            if chunk == self._page and word == b"\0\0\0\0" and self._initial is None:
                self.pages.pop(index, None)
            else:
                phase = offset & 3
                pattern = (word[phase:] + word * (chunk // 4 + 2))[:chunk]
                self.page(index)[start : start + chunk] = pattern
            offset += chunk

    def clear(self) -> None:
        """Forget every page."""
        self.pages.clear()
