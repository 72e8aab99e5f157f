"""The parts of :mod:`pyspalloc.server.login_guard` on their own: the hashing gate, the
verified-credential cache, the address throttle and the client address."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from pyspalloc.server.login_guard import (
    AddressThrottle,
    Busy,
    HashGate,
    VerifiedCache,
    client_address,
)


def test_gate_runs_one_at_a_time_and_refuses_beyond_its_queue() -> None:
    gate = HashGate(slots=1, queue=2, wait=5.0)
    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def work() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)
        with lock:
            running -= 1
        return "done"

    def attempt(_: int) -> str:
        try:
            return gate.run(work)
        except Busy:
            return "busy"

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(attempt, n) for n in range(6)]
        time.sleep(0.3)
        release.set()
        results = sorted(f.result(10) for f in futures)
    assert results == ["busy"] * 3 + ["done"] * 3
    assert most == 1


def test_gate_waits_only_so_long() -> None:
    gate = HashGate(slots=1, queue=5, wait=0.2)
    with gate.slot():
        start = time.monotonic()
        with pytest.raises(Busy):
            gate.run(lambda: None)
        assert 0.15 < time.monotonic() - start < 2.0
    assert gate.run(lambda: 7) == 7
    assert 0.0 <= gate.typical() <= 2.0


def test_verified_cache_needs_the_same_hash_and_expires() -> None:
    cache = VerifiedCache(ttl=0.3)
    key = cache.key("alice", "pw")
    assert key != cache.key("alice", "pw2") and key != cache.key("alicep", "w")
    assert key != VerifiedCache(ttl=1).key("alice", "pw")  # keyed per process
    assert not cache.valid(key, 1, "h1")
    cache.put(key, 1, "h1")
    assert cache.valid(key, 1, "h1")
    assert not cache.valid(key, 1, "h2")  # password changed: the entry is dropped
    assert not cache.valid(key, 1, "h1")
    cache.put(key, 1, "h1")
    cache.forget(1)
    assert not cache.valid(key, 1, "h1")
    cache.put(key, 1, "h1")
    time.sleep(0.35)
    assert not cache.valid(key, 1, "h1")
    small = VerifiedCache(ttl=60, size=3)
    keys = [small.key("u", str(n)) for n in range(5)]
    for k in keys:
        small.put(k, 1, "h")
    assert [small.valid(k, 1, "h") for k in keys] == [False, False, True, True, True]


def test_verified_cache_shares_one_check_of_the_same_credentials() -> None:
    cache = VerifiedCache(ttl=60)
    key = cache.key("alice", "pw")
    flight, leading = cache.join(key)
    assert leading  # the first checks
    same, leading = cache.join(key)
    assert same is flight and not leading and not flight.done.is_set()
    assert flight.wait(0.05) == "abandoned"  # not landed yet
    cache.land(key, flight, "ok")
    cache.land(key, flight, "busy")  # only the first landing counts
    assert flight.wait(0) == "ok" and asyncio.run(flight.wait_async(1.0)) == "ok"
    again, leading = cache.join(key)
    assert leading and again is not flight  # a new check after landing
    cache.land(key, flight, "ok")  # an old flight cannot land the new one
    assert not again.done.is_set()


def test_throttle_counts_before_and_gives_back_on_success() -> None:
    throttle = AddressThrottle(limit=3, window=0.5, addresses=2)
    assert [throttle.take("a") for _ in range(4)] == [True, True, True, False]
    assert throttle.blocked("a")
    throttle.give_back("a")
    assert not throttle.blocked("a") and throttle.take("a")
    assert throttle.first_refusal("a") and not throttle.first_refusal("a")
    time.sleep(0.55)
    assert not throttle.blocked("a") and throttle.take("a")
    # at most ``addresses`` addresses are tracked: the oldest is forgotten
    small = AddressThrottle(limit=1, window=60.0, addresses=2)
    assert small.take("a") and not small.take("a")
    assert small.take("b") and small.take("c")
    assert small.take("a") and not small.take("c")


def _conn(peer: str, forwarded: str | None = None) -> Any:
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    return SimpleNamespace(client=SimpleNamespace(host=peer), headers=headers)


def test_client_address_trusts_only_configured_proxies() -> None:
    trusted = ("10.0.0.1", "10.0.0.2")
    assert client_address(_conn("192.0.2.5", "203.0.113.1"), trusted) == "192.0.2.5"
    assert client_address(_conn("10.0.0.1", "203.0.113.1"), trusted) == "203.0.113.1"
    assert client_address(_conn("10.0.0.1", "6.6.6.6, 203.0.113.1, 10.0.0.2"), trusted) == (
        "203.0.113.1"
    )
    assert client_address(_conn("10.0.0.1", "not-an-address"), trusted) == "10.0.0.1"
    assert client_address(_conn("10.0.0.1"), trusted) == "10.0.0.1"
    assert client_address(_conn("10.0.0.1", "2001:db8::1"), trusted) == "2001:db8::1"
