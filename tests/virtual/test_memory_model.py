"""The memory model: fill runs and unwritten memory cost nothing; a budget bounds the rest."""

from __future__ import annotations

import itertools
import random
import struct

import pytest

from pyspalloc.virtual.memory import (
    RUN_COST,
    SDRAM_SIZE,
    MemoryBudget,
    MemoryBudgetExceeded,
    SparseMemory,
)
from pyspalloc.wire.scp import SCPResult
from tests.virtual.helpers import ScpClient

MiB = 1024 * 1024


def test_matches_a_flat_bytearray_under_random_operations() -> None:
    size, rng = 1 << 16, random.Random(11)
    memory = SparseMemory(size, 8, budget=MemoryBudget(size * 4))
    flat = bytearray(size)
    for _ in range(3000):
        offset = rng.randrange(size)
        length = rng.randrange(1, min(size - offset, 3000) + 1)
        action = rng.random()
        if action < 0.4:
            data = rng.randbytes(length)
            memory.write(offset, data)
            flat[offset : offset + length] = data
        elif action < 0.7:
            word = rng.choice([b"\0\0\0\0", rng.randbytes(4), b"\xaa\xbb\xcc\xdd"])
            memory.fill(offset, word, length)
            phase = offset & 3
            flat[offset : offset + length] = (word * (length // 4 + 2))[phase : phase + length]
        else:
            assert memory.read(offset, length) == bytes(flat[offset : offset + length])
    assert memory.read(0, size) == bytes(flat)
    runs = memory.runs
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(runs))  # disjoint, sorted
    assert all(word != b"\0\0\0\0" for _, _, word in runs)  # zeros are not stored


def test_a_fill_of_any_size_is_one_run_and_reads_store_nothing() -> None:
    budget = MemoryBudget(1 * MiB)
    memory = SparseMemory(SDRAM_SIZE, 12, budget=budget)
    memory.fill(0, b"\x44\x33\x22\x11", SDRAM_SIZE)  # all 128 MiB
    assert memory.runs == [(0, SDRAM_SIZE, b"\x44\x33\x22\x11")]
    assert budget.used == RUN_COST and not memory.pages
    assert memory.read(SDRAM_SIZE - 8, 8) == bytes.fromhex("4433221144332211")
    assert memory.read(0x123456, 4 * MiB) == (b"\x22\x11\x44\x33") * MiB  # phase kept
    assert not memory.pages and budget.used == RUN_COST
    memory.write(6, b"xy")  # a page over the run starts with the run's bytes
    assert memory.read(0, 12) == bytes.fromhex("44332211 4433") + b"xy" + bytes.fromhex("44332211")
    assert len(memory.pages) == 1 and budget.used == RUN_COST + 4096
    memory.fill(0, b"\0\0\0\0", SDRAM_SIZE)  # clearing gives everything back
    assert not memory.pages and not memory.runs and budget.used == 0
    assert memory.read(0, 64) == bytes(64)


def test_overlapping_fills_split_and_merge_runs() -> None:
    memory = SparseMemory(1 << 20, 12, budget=MemoryBudget(1 << 20))
    memory.fill(0, b"AAAA", 1000)
    memory.fill(400, b"BBBB", 200)
    assert memory.runs == [(0, 400, b"AAAA"), (400, 600, b"BBBB"), (600, 1000, b"AAAA")]
    memory.fill(400, b"AAAA", 200)  # the same word again: one run
    assert memory.runs == [(0, 1000, b"AAAA")]
    memory.fill(1000, b"AAAA", 24)  # adjacent: merged
    assert memory.runs == [(0, 1024, b"AAAA")]
    memory.fill(100, b"\0\0\0\0", 100)  # a hole
    assert memory.runs == [(0, 100, b"AAAA"), (200, 1024, b"AAAA")]
    assert memory.held == 2 * RUN_COST


def test_budget_refuses_writes_and_changes_nothing() -> None:
    budget = MemoryBudget(3 * 4096)
    memory = SparseMemory(SDRAM_SIZE, 12, budget=budget)
    memory.write(0, b"a" * (3 * 4096))
    with pytest.raises(MemoryBudgetExceeded):
        memory.write(5 * 4096 - 2, b"zzzz")  # two new pages
    assert memory.read(5 * 4096 - 2, 4) == bytes(4) and len(memory.pages) == 3
    with pytest.raises(MemoryBudgetExceeded):
        memory.fill(0x100000, b"1234", 64)  # a run costs too
    memory.fill(0, b"\0\0\0\0", 4096)  # freeing a page makes room
    memory.write(5 * 4096 - 2, b"zz")
    assert budget.used == 3 * 4096
    memory.clear()
    assert budget.used == 0


def test_live_machine_answers_rc_buf_when_its_budget_is_spent(make_vm) -> None:
    vm = make_vm(booted=True, memory_budget=64 * 1024)
    board = next(iter(vm.boards.values()))
    with ScpClient(board.ip) as scp:
        # FILL of all SDRAM of every chip of the board: one run each, no pages
        for x, y in ((0, 0), (1, 0), (7, 7)):
            scp.ok(x, y, 0, 5, 0x60000000, 0x01020304, SDRAM_SIZE)
        assert scp.read(7, 7, 0x67FFFFFC, 4) == struct.pack("<I", 0x01020304)
        written = 0
        for page in range(64):
            reply = scp.request(0, 0, 0, 3, 0x60000000 + page * 4096, 256, 0, b"w" * 256)
            if reply.result != SCPResult.RC_OK:
                assert reply.result == SCPResult.RC_BUF
                break
            written += 1
        assert 0 < written < 16  # 64 KiB of 4 KiB pages (less the runs and SV pages)
        assert scp.read(0, 0, 0x60000000, 4) == b"wwww"  # the board still answers
        assert scp.read(0, 0, 0x60000000 + written * 4096, 4) == struct.pack("<I", 0x01020304)
    used = vm.memory_budget.used
    assert 0 < used <= 64 * 1024
    board.power_on()  # a reset gives the board's memory back
    assert vm.memory_budget.used == 0
