"""What keeps password checks from being a weapon: bounded hashing, a cache of verified
credentials, per-address throttling and the client's address behind trusted proxies.

Argon2 costs 64 MiB and a good part of a CPU core per check. :class:`HashGate` lets only
a few run at once and a few more wait (briefly); the rest are refused at once (503).
:class:`VerifiedCache` remembers, for a short while, credentials that were verified, under
a keyed hash of user and password, so that Basic authentication does not hash on every
request; concurrent checks of the same credentials share one hash. :class:`AddressThrottle`
counts attempts per client address *before* they are hashed, so a burst cannot exceed
the limit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import random
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

T = TypeVar("T")

#: longest pause given to a refusal that did not hash (s)
MAX_PACE = 2.0
#: where :class:`SharedBasicCheck` leaves a request's :class:`FlightTicket` (scope state)
FLIGHT_STATE = "basic_flight"


class Busy(Exception):
    """Too many password checks at once; the caller should retry shortly (503)."""


class HashGate:
    """Runs at most ``slots`` password hashes at once, with at most ``queue`` waiting.

    A caller that finds the queue full, or waits longer than ``wait`` seconds, gets
    :class:`Busy`. The gate also keeps a running average of how long a hash takes, which
    paces refusals that need no hash (see :meth:`typical`).
    """

    def __init__(self, slots: int, queue: int, wait: float) -> None:
        self.slots, self.queue, self.wait = max(1, slots), max(0, queue), wait
        self._semaphore = threading.BoundedSemaphore(self.slots)
        self._lock = threading.Lock()
        self._admitted = 0
        self._average: float | None = None  # s per hash, once one was timed

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one hashing slot for the block.

        Raises
        ------
        Busy
            The queue is full, or no slot came free within ``wait`` seconds.
        """
        with self._lock:
            if self._admitted >= self.slots + self.queue:
                raise Busy()
            self._admitted += 1
        try:
            if not self._semaphore.acquire(timeout=self.wait):
                raise Busy()
            try:
                yield
            finally:
                self._semaphore.release()
        finally:
            with self._lock:
                self._admitted -= 1

    def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a hash) in a slot, timing it."""
        with self.slot():
            return self.timed(work)

    def timed(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a hash, in a slot already held), timing it."""
        start = time.monotonic()
        try:
            return work()
        finally:
            spent = time.monotonic() - start
            with self._lock:
                last = spent if self._average is None else self._average
                self._average = last + (spent - last) * 0.3

    def typical(self) -> float:
        """About as long as a hash takes now (jittered, at most :data:`MAX_PACE`)."""
        average = 0.2 if self._average is None else self._average
        return min(MAX_PACE, average * random.uniform(0.9, 1.2))


@dataclass
class Flight:
    """A check of one credential in progress, that others with the same one wait for.

    ``outcome`` is set when it lands: ``ok``, ``bad_password``, ``locked``, ``busy``, or
    ``abandoned`` (the request that led it never checked it: check again).
    """

    done: threading.Event = field(default_factory=threading.Event)
    outcome: str = "abandoned"

    def wait(self, timeout: float) -> str:
        """Wait (in a thread) until it lands; the outcome (``abandoned`` on timeout)."""
        return self.outcome if self.done.wait(timeout) else "abandoned"

    async def wait_async(self, timeout: float) -> str:
        """Wait on the event loop until it lands; the outcome (``abandoned`` on timeout)."""
        deadline = time.monotonic() + timeout
        while not self.done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.outcome if self.done.is_set() else "abandoned"


@dataclass(frozen=True)
class FlightTicket:
    """A request's share in the check of ``key``: it leads ``flight`` or waits for it."""

    key: bytes
    flight: Flight
    leading: bool


class VerifiedCache:
    """Credentials verified in the last ``ttl`` seconds, under an HMAC of user and password.

    An entry only counts while the user's password hash is still the one it was verified
    against, so a password change invalidates it wherever it was made (this process, the
    web UI or the command line); :meth:`forget` drops a user's entries at once.
    """

    def __init__(self, ttl: float, size: int = 4096) -> None:
        self.ttl, self.size = ttl, size
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, tuple[int, str, float]] = OrderedDict()
        self._flights: dict[bytes, Flight] = {}

    def key(self, name: str, password: str) -> bytes:
        """The keyed hash under which a name and password are remembered."""
        message = name.encode("utf-8", "surrogatepass") + b"\0"
        message += password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def valid(self, key: bytes, user_id: int, password_hash: str | None) -> bool:
        """Whether ``key`` was verified for this user and password hash, recently."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            if entry[2] < time.monotonic() or (entry[0], entry[1]) != (user_id, password_hash):
                del self._entries[key]
                return False
            return True

    def known(self, key: bytes) -> bool:
        """Whether ``key`` was verified recently (for some user and hash)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry[2] >= time.monotonic()

    def put(self, key: bytes, user_id: int, password_hash: str) -> None:
        """Remember that ``key`` was verified against ``password_hash``."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (user_id, password_hash, time.monotonic() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, user_id: int) -> None:
        """Drop every entry of a user (after a password change or disabling)."""
        with self._lock:
            for key in [k for k, v in self._entries.items() if v[0] == user_id]:
                del self._entries[key]

    def join(self, key: bytes) -> tuple[Flight, bool]:
        """Join the check of ``key`` in progress, or begin one; the flight and whether
        the caller leads it (and must :meth:`land` it)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def land(self, key: bytes, flight: Flight, outcome: str) -> None:
        """End the check ``flight`` of ``key`` with ``outcome`` (once; later calls do
        nothing)."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if flight.done.is_set():
                return
            flight.outcome = outcome
            flight.done.set()


class AddressThrottle:
    """Allows ``limit`` unsuccessful password attempts per address within ``window`` s.

    An attempt takes its place *before* it is checked (:meth:`take`) and gives it back
    if it succeeds (:meth:`give_back`), so concurrent attempts cannot overshoot. At most
    ``addresses`` addresses are tracked (the least recently new ones are dropped).
    """

    def __init__(self, limit: int, window: float, addresses: int = 10_000) -> None:
        self.limit, self.window, self.addresses = limit, window, addresses
        self._lock = threading.Lock()
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()
        self._reported: OrderedDict[str, float] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._attempts.get(address)
        if times is None:
            return None
        while times and times[0] < now - self.window:
            times.popleft()
        if not times:
            del self._attempts[address]
            return None
        return times

    def blocked(self, address: str) -> bool:
        """Whether ``address`` has used up its attempts."""
        with self._lock:
            times = self._recent(address, time.monotonic())
            return times is not None and len(times) >= self.limit

    def take(self, address: str) -> bool:
        """Count an attempt from ``address``; False (nothing counted) if it is blocked."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if times is None:
                if len(self._attempts) >= self.addresses:
                    self._attempts.popitem(last=False)
                times = self._attempts[address] = deque(maxlen=self.limit + 1)
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True

    def first_refusal(self, address: str) -> bool:
        """Whether a refusal of ``address`` is the first in ``window`` s (worth logging)."""
        now = time.monotonic()
        with self._lock:
            last = self._reported.get(address)
            if last is not None and last > now - self.window:
                return False
            self._reported[address] = now
            self._reported.move_to_end(address)
            while len(self._reported) > self.addresses:
                self._reported.popitem(last=False)
            return True

    def give_back(self, address: str) -> None:
        """Uncount the latest attempt of ``address`` (it succeeded or was not checked)."""
        with self._lock:
            times = self._attempts.get(address)
            if times:
                times.pop()


def client_address(conn: HTTPConnection, trusted_proxies: Collection[str]) -> str:
    """The client's address: the peer, or behind trusted proxies, the address they saw.

    When the peer is one of ``trusted_proxies``, the ``X-Forwarded-For`` list is read
    from the right, skipping trusted proxies; the first other address is the client.
    """
    peer = conn.client.host if conn.client else "?"
    if peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in conn.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed(hops):
        if hop and hop not in trusted_proxies:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


def basic_credentials(header: str) -> tuple[str, str] | None:
    """The user name and password of an ``Authorization: Basic`` header, if it is one."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None


class SharedBasicCheck:
    """ASGI middleware: a request whose Basic credentials are being checked for another
    request waits for that check here, on the event loop, instead of in a worker thread;
    the first request with new credentials leads their check (its :class:`FlightTicket`
    is left in the scope's state under :data:`FLIGHT_STATE` for the password check).

    So a burst of requests with the same credentials costs one hash and one worker
    thread while it is checked, whatever its size.
    """

    def __init__(self, app: ASGIApp, verified: VerifiedCache, wait: float) -> None:
        self.app = app
        self.verified = verified
        self.wait = wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        credentials = None
        if scope["type"] in ("http", "websocket"):
            credentials = basic_credentials(Headers(scope=scope).get("authorization", ""))
        if credentials is None:
            await self.app(scope, receive, send)
            return
        key = self.verified.key(*credentials)
        if self.verified.known(key):  # verified recently: the route finds it in the cache
            await self.app(scope, receive, send)
            return
        flight, leading = self.verified.join(key)
        scope.setdefault("state", {})[FLIGHT_STATE] = FlightTicket(key, flight, leading)
        if not leading:
            await flight.wait_async(self.wait)
        try:
            await self.app(scope, receive, send)
        finally:
            if leading:  # (the password check lands it; this is for when none was made)
                self.verified.land(key, flight, "abandoned")
