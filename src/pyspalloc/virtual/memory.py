"""Sparse chip memory: written pages, fill runs, and nothing at all for the rest.

Addresses are folded onto three regions (buffered and unbuffered aliases share storage):
SDRAM ``0x6.../0x7...``, System RAM ``0xE5.../0xF5...`` and the router ``0xE1.../0xF1...``.

A region's contents are, in order of precedence: pages made by writes; fill runs (a FILL
of any size is one ``(start, end, word)`` run); a page's initial contents (if the memory
has any); zeros. Reading never stores anything. Every stored page and run is charged to
a :class:`MemoryBudget` shared by all chips of a machine, so no sequence of requests can
make a virtual machine hold more than its budget.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from enum import IntEnum

__all__ = [
    "DEFAULT_BUDGET",
    "ROUTER_SIZE",
    "RUN_COST",
    "SDRAM_SIZE",
    "SYSRAM_SIZE",
    "MemoryBudget",
    "MemoryBudgetExceeded",
    "Region",
    "SparseMemory",
    "locate",
]

SDRAM_BASE = 0x60000000
SDRAM_SIZE = 128 * 1024 * 1024
SYSRAM_SIZE = 32 * 1024
ROUTER_BASE = 0xE1000000
#: Router registers (64 KiB) then the P2P table (8192 words).
ROUTER_SIZE = 0x18000
#: Bytes a machine's memories may hold by default (written pages and fill runs).
DEFAULT_BUDGET = 256 * 1024 * 1024
#: Bytes charged for one fill run (its bookkeeping, whatever its length).
RUN_COST = 64

_ZERO_WORD = b"\0\0\0\0"


class MemoryBudgetExceeded(Exception):
    """A write would make the machine hold more memory than its budget allows."""


class MemoryBudget:
    """Bytes of memory the chips of one virtual machine may hold between them.

    Parameters
    ----------
    limit:
        Most bytes held at once; a charge beyond it raises :class:`MemoryBudgetExceeded`.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = DEFAULT_BUDGET) -> None:
        if limit < 0:
            raise ValueError("a memory budget cannot be negative")
        self.limit = limit
        self.used = 0

    def charge(self, amount: int) -> None:
        """Account for ``amount`` more bytes, or raise without changing anything."""
        if amount > 0 and self.used + amount > self.limit:
            raise MemoryBudgetExceeded(
                f"virtual machine memory budget of {self.limit} bytes exceeded "
                f"({self.used} held, {amount} more asked)"
            )
        self.used += amount

    def credit(self, amount: int) -> None:
        """Give back ``amount`` bytes."""
        self.used = max(0, self.used - amount)


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


class Region(IntEnum):
    """The memory regions a chip models."""

    SDRAM = 0
    SYSRAM = 1
    ROUTER = 2


def _pattern(word: bytes, start: int, length: int) -> bytes:
    """``length`` bytes of ``word`` repeated, as they lie from offset ``start`` on."""
    phase = start & 3
    return (word * (length // 4 + 2))[phase : phase + length]


class SparseMemory:
    """Byte storage of written pages over fill runs over zeros.

    Parameters
    ----------
    size:
        Bytes addressable (offsets ``0 .. size-1``).
    page_bits:
        log2 of the page size (the unit in which writes are stored and charged).
    initial:
        Optional function giving the initial contents of page ``index``; without it
        (or when it returns None) a page starts as its fill runs or zeros.
    budget:
        Where stored pages and runs are charged; None: unlimited.
    """

    __slots__ = (
        "_budget",
        "_ends",
        "_initial",
        "_mask",
        "_page",
        "_shift",
        "_starts",
        "_words",
        "pages",
        "size",
    )

    def __init__(
        self,
        size: int,
        page_bits: int,
        initial: Callable[[int], bytearray | None] | None = None,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.size = size
        self._shift = page_bits
        self._page = 1 << page_bits
        self._mask = self._page - 1
        self._initial = initial
        self._budget = budget
        self.pages: dict[int, bytearray] = {}
        # fill runs: sorted, disjoint [start, end) with the word repeated over them
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._words: list[bytes] = []

    # -- what is held -----------------------------------------------------------------

    @property
    def runs(self) -> list[tuple[int, int, bytes]]:
        """The fill runs, as ``(start, end, word)``, in address order."""
        return list(zip(self._starts, self._ends, self._words, strict=True))

    @property
    def held(self) -> int:
        """Bytes this memory is charged for (its pages and runs)."""
        return len(self.pages) * self._page + len(self._starts) * RUN_COST

    def _charge(self, amount: int) -> None:
        if self._budget is not None:
            self._budget.charge(amount)

    def _credit(self, amount: int) -> None:
        if self._budget is not None and amount:
            self._budget.credit(amount)

    # -- contents without pages --------------------------------------------------------

    def _background(self, offset: int, length: int) -> bytes:
        """What the fill runs (and zeros) hold over ``[offset, offset+length)``."""
        end = offset + length
        first = bisect_right(self._ends, offset)
        if first >= len(self._starts) or self._starts[first] >= end:
            return bytes(length)
        out = bytearray(length)
        for i in range(first, len(self._starts)):
            start = self._starts[i]
            if start >= end:
                break
            lo, hi = max(start, offset), min(self._ends[i], end)
            out[lo - offset : hi - offset] = _pattern(self._words[i], lo, hi - lo)
        return bytes(out)

    def _unstored(self, index: int, offset: int, length: int) -> bytes:
        """Contents of part of page ``index``, which has no stored copy."""
        if self._initial is not None:
            page = self._initial(index)
            if page is not None:
                start = offset & self._mask
                return bytes(page[start : start + length])
        return self._background(offset, length)

    def _make(self, index: int) -> bytearray:
        """Store page ``index`` with its current contents (the caller has charged it)."""
        page = self._initial(index) if self._initial is not None else None
        if page is None:
            page = bytearray(self._background(index << self._shift, self._page))
        self.pages[index] = page
        return page

    # -- access ------------------------------------------------------------------------

    def page(self, index: int) -> bytearray:
        """Return page ``index``, storing (and charging) it if needed."""
        page = self.pages.get(index)
        if page is None:
            self._charge(self._page)
            page = self._make(index)
        return page

    def read(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset`` (storing nothing)."""
        index = offset >> self._shift
        start = offset & self._mask
        if start + length <= self._page:
            page = self.pages.get(index)
            if page is None:
                return self._unstored(index, offset, length)
            return bytes(page[start : start + length])
        if not self.pages and self._initial is None:
            return self._background(offset, length)
        out = bytearray()
        end = offset + length
        while offset < end:
            chunk = min(end - offset, self._page - (offset & self._mask))
            page = self.pages.get(offset >> self._shift)
            if page is None:
                out += self._unstored(offset >> self._shift, offset, chunk)
            else:
                start = offset & self._mask
                out += page[start : start + chunk]
            offset += chunk
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset``.

        Raises
        ------
        MemoryBudgetExceeded
            If the pages it needs do not fit the budget (nothing is written then).
        """
        length = len(data)
        if not length:
            return
        first = offset >> self._shift
        last = (offset + length - 1) >> self._shift
        pages = self.pages
        missing = [i for i in range(first, last + 1) if i not in pages]
        if missing:
            self._charge(len(missing) * self._page)
            for index in missing:
                self._make(index)
        start = offset & self._mask
        if first == last:
            pages[first][start : start + length] = data
            return
        view = memoryview(data)
        done = 0
        index = first
        while done < length:
            chunk = min(length - done, self._page - start)
            pages[index][start : start + chunk] = view[done : done + chunk]
            done += chunk
            index += 1
            start = 0

    def fill(self, offset: int, word: bytes, length: int) -> None:
        """Repeat the 4-byte ``word`` over ``length`` bytes from ``offset``.

        Without initial contents this is one run whatever the length: pages wholly
        inside the range are dropped, the (at most two) pages it cuts are patched, and
        filling with zeros simply forgets what the range held.

        Raises
        ------
        MemoryBudgetExceeded
            If the run (or, with initial contents, the pages) does not fit the budget.
        """
        if length <= 0:
            return
        if self._initial is not None:
            # small regions with initial contents (System RAM): patch their pages
            self.write(offset, _pattern(word, offset, length))
            return
        end = offset + length
        self._set_run(offset, end, word)
        first = offset >> self._shift
        last = (end - 1) >> self._shift
        dropped = 0
        if last - first + 1 <= len(self.pages):
            candidates = list(range(first, last + 1))
        else:
            candidates = [i for i in self.pages if first <= i <= last]
        for index in candidates:
            page = self.pages.get(index)
            if page is None:
                continue
            lo = max(offset, index << self._shift)
            hi = min(end, (index + 1) << self._shift)
            if hi - lo == self._page:
                del self.pages[index]
                dropped += 1
            else:
                at = lo & self._mask
                page[at : at + hi - lo] = _pattern(word, lo, hi - lo)
        self._credit(dropped * self._page)

    def _set_run(self, start: int, end: int, word: bytes) -> None:
        """Make ``[start, end)`` one run of ``word`` (none if zero), merging neighbours."""
        starts, ends, words = self._starts, self._ends, self._words
        lo = bisect_right(ends, start)  # first run ending after start
        hi = bisect_left(starts, end)  # first run starting at or after end
        new_starts: list[int] = []
        new_ends: list[int] = []
        new_words: list[bytes] = []
        if lo < hi and starts[lo] < start:  # keep the head of a run cut at start
            new_starts.append(starts[lo])
            new_ends.append(start)
            new_words.append(words[lo])
        if word != _ZERO_WORD:
            new_starts.append(start)
            new_ends.append(end)
            new_words.append(word)
        if lo < hi and ends[hi - 1] > end:  # keep the tail of a run cut at end
            new_starts.append(end)
            new_ends.append(ends[hi - 1])
            new_words.append(words[hi - 1])
        # merge with untouched neighbours of the same word
        if (
            lo > 0
            and new_starts
            and ends[lo - 1] == new_starts[0]
            and words[lo - 1] == new_words[0]
        ):
            lo -= 1
            new_starts[0] = starts[lo]
        if (
            hi < len(starts)
            and new_starts
            and starts[hi] == new_ends[-1]
            and words[hi] == new_words[-1]
        ):
            new_ends[-1] = ends[hi]
            hi += 1
        k = 0
        while k + 1 < len(new_starts):
            if new_ends[k] == new_starts[k + 1] and new_words[k] == new_words[k + 1]:
                new_ends[k] = new_ends[k + 1]
                del new_starts[k + 1], new_ends[k + 1], new_words[k + 1]
            else:
                k += 1
        delta = (len(new_starts) - (hi - lo)) * RUN_COST
        if delta > 0:
            self._charge(delta)
        else:
            self._credit(-delta)
        starts[lo:hi] = new_starts
        ends[lo:hi] = new_ends
        words[lo:hi] = new_words

    def clear(self) -> None:
        """Forget every page and run, and give their bytes back to the budget."""
        self._credit(self.held)
        self.pages.clear()
        self._starts.clear()
        self._ends.clear()
        self._words.clear()
