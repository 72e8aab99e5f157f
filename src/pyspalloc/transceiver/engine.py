"""The SCP engine: one windowed burst function that every operation calls.

:func:`scp_stream` sends a (possibly lazy) sequence of SCP requests over one
:class:`~pyspalloc.transceiver.connections.Connection`, keeping at most ``window``
requests in flight, and hands each RC_OK reply to a callback. Each request has its own
timer: a lost reply costs one ``timeout`` for that request only, and only that request
is resent. Retry result codes (``RETRY_RESULTS``) are resent after a short, bounded
back-off. Every request is tried at most ``1 + retries`` times.

One connection must carry only one burst at a time (replies are matched by sequence
number, and a second concurrent burst would steal them); :class:`~.Transceiver` holds a
lock per connection for this.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Final

from pyspalloc.exceptions import (
    SpinnmanException,
    SpinnmanGenericProcessException,
    SpinnmanInvalidParameterException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
    SpinnmanUnexpectedResponseCodeException,
)
from pyspalloc.transceiver.connections import Connection
from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.scp import (
    RETRY_RESULTS,
    SCPCommand,
    SCPRequest,
    SCPResponse,
    SCPResult,
    scp_request,
    with_sequence,
)
from pyspalloc.wire.sdp import SDPFlag, SDPHeader

__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_WINDOW",
    "MIN_TIMEOUT",
    "EngineOptions",
    "ReplyCallback",
    "ErrorCallback",
    "make_request",
    "next_sequence",
    "scp_burst",
    "scp_call",
    "scp_stream",
]

#: Called with (index of the request in the burst, its RC_OK reply).
ReplyCallback = Callable[[int, SCPResponse], None]
#: Called with (index, request, error) when a request fails and errors are not raised.
ErrorCallback = Callable[[int, SCPRequest, SpinnmanException], None]

#: First back-off after a retry code; doubles on each further retry code.
RETRY_BACKOFF = 0.005
#: The longest back-off after a retry code.
MAX_RETRY_BACKOFF = 0.1

_sequence_counter = itertools.count()
# Round-trip estimates (srtt, rttvar) remembered per connection between bursts.
_round_trips: weakref.WeakKeyDictionary[object, tuple[float, float]] = weakref.WeakKeyDictionary()
_sequence_lock = threading.Lock()


def next_sequence() -> int:
    """Return the next process-wide SCP sequence number (wraps at 65536)."""
    with _sequence_lock:
        return next(_sequence_counter) & 0xFFFF


#: Requests kept in flight by default over plain UDP to a board (what SC&MP keeps up with).
DEFAULT_WINDOW: Final = 8
#: The shortest adaptive retransmission timeout by default.
MIN_TIMEOUT: Final = 0.02


@dataclass(frozen=True)
class EngineOptions:
    """How hard the engine tries: the one place its settings and their defaults live.

    Parameters
    ----------
    window:
        Most requests in flight at once (a real board has 8 transient tags).
    timeout:
        Seconds to wait for each request's reply before resending it.
    retries:
        Resends allowed per request after the first attempt.
    min_timeout:
        Floor of the adaptive resend timer (see :func:`scp_stream`); equal to
        ``timeout`` for a fixed timer.
    """

    window: int = DEFAULT_WINDOW
    timeout: float = 1.0
    retries: int = 10
    min_timeout: float = MIN_TIMEOUT

    def __post_init__(self) -> None:
        if self.window < 1:
            raise SpinnmanInvalidParameterException("window", self.window, "must be >= 1")
        if self.timeout <= 0:
            raise SpinnmanInvalidParameterException("timeout", self.timeout, "must be > 0")
        if self.retries < 0:
            raise SpinnmanInvalidParameterException("retries", self.retries, "must be >= 0")

    def once(self) -> EngineOptions:
        """For a command that must not run twice (or is slow on the board).

        The request is resent only after the full ``timeout`` (a fixed timer), never
        early on the adaptive estimate, so a late reply is not taken for a lost one.
        """
        return replace(self, min_timeout=self.timeout)

    def slow(self, timeout: float) -> EngineOptions:
        """For a command the board takes a while to answer: wait at least ``timeout``.

        The adaptive timer is kept; only its ceiling is raised to ``timeout`` if lower.
        """
        return replace(self, timeout=max(self.timeout, timeout))

    def changed(
        self,
        *,
        window: int | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        min_timeout: float | None = None,
    ) -> EngineOptions:
        """These options with each setting given (not ``None``) replaced."""
        return EngineOptions(
            self.window if window is None else window,
            self.timeout if timeout is None else timeout,
            self.retries if retries is None else retries,
            self.min_timeout if min_timeout is None else min_timeout,
        )


#: The defaults: a window of 8, at most 1 s per attempt, 10 retries.
DEFAULT_OPTIONS: Final = EngineOptions()


def make_request(
    connection: Connection,
    x: int,
    y: int,
    p: int,
    command: int,
    arg1: int = 0,
    arg2: int = 0,
    arg3: int = 0,
    data: bytes = b"",
) -> SCPRequest:
    """An SCP request to core (x, y, p), sent from ``connection``'s chip."""
    header = _header(x, y, p, connection.chip_x & 0xFF, connection.chip_y & 0xFF)
    return SCPRequest(header, command, 0, arg1, arg2, arg3, data)


@functools.lru_cache(maxsize=4096)
def _header(x: int, y: int, p: int, src_x: int, src_y: int) -> SDPHeader:
    # Headers are immutable and shared: the same destination gets the same object.
    return scp_request(x, y, p, 0, flags=SDPFlag.REPLY_EXPECTED, src_x=src_x, src_y=src_y).header


def describe(request: SCPRequest) -> str:
    """``"READ to 0,0,0"``: the command name and destination core of ``request``."""
    try:
        name = SCPCommand(request.command).name
    except ValueError:
        name = f"command {request.command}"
    header = request.header
    return f"{name} to {header.dest_x},{header.dest_y},{header.dest_cpu}"


class _InFlight:
    """One outstanding request."""

    __slots__ = (
        "attempts",
        "awaiting",
        "data",
        "deadline",
        "index",
        "reasons",
        "request",
        "sent_at",
        "waited",
    )

    def __init__(self, index: int, request: SCPRequest, data: bytes) -> None:
        self.index = index
        self.request = request
        self.data = data
        self.deadline = 0.0
        self.sent_at = 0.0
        self.attempts = 1
        self.awaiting = True  # False while backing off before a resend
        self.reasons: list[str] = []
        self.waited = 0.0


class _RoundTrip:
    """Smoothed round-trip time of one burst, giving the retransmission timeout (RTO).

    Until the first reply on the connection the RTO is the full ``timeout``; afterwards
    (also in later bursts on the same connection) it is
    ``srtt + 4 * rttvar`` clamped to ``[min_timeout, timeout]``. A request's k-th
    resend waits ``min(timeout, rto * 2**k)``. Only replies to requests sent once are
    sampled.
    """

    __slots__ = ("floor", "srtt", "timeout", "var")

    def __init__(self, timeout: float, min_timeout: float) -> None:
        self.timeout = timeout
        self.floor = min(min_timeout, timeout)
        self.srtt: float | None = None
        self.var = 0.0

    def restore(self, connection: object) -> None:
        """Start from the estimate left by the connection's previous burst."""
        try:
            self.srtt, self.var = _round_trips[connection]
        except (KeyError, TypeError):
            pass

    def remember(self, connection: object) -> None:
        """Keep the estimate for the connection's next burst."""
        if self.srtt is not None:
            try:
                _round_trips[connection] = (self.srtt, self.var)
            except TypeError:
                pass  # not weakly referenceable: every burst starts afresh

    def sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.var = rtt, rtt / 2
        else:
            self.var = 0.75 * self.var + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    def wait(self, attempt: int) -> float:
        if self.srtt is None:
            return self.timeout
        rto: float = max(self.floor, self.srtt + 4 * self.var)
        return min(self.timeout, rto * (1 << (attempt - 1)))


def _failure(flight: _InFlight, timeout: float, retries: int) -> SpinnmanException:
    what = describe(flight.request)
    header = flight.request.header
    if all(reason == "timeout" for reason in flight.reasons):
        return SpinnmanTimeoutException(
            what,
            timeout,
            f"{what}: no reply in {flight.attempts} attempts "
            f"({flight.waited:.3g} s in all, at most {timeout} s each)",
        )
    error = SpinnmanIOException(
        f"{what}: failed after {flight.attempts} attempts ({retries} retries): "
        + ", ".join(flight.reasons)
    )
    return SpinnmanGenericProcessException(
        error, header.dest_x, header.dest_y, header.dest_cpu, f"{error}"
    )


def _bad_result(request: SCPRequest, result: SCPResult) -> SpinnmanException:
    header = request.header
    what = describe(request)
    try:
        name = SCPCommand(request.command).name
    except ValueError:
        name = str(request.command)
    error = SpinnmanUnexpectedResponseCodeException(what, name, result.name)
    return SpinnmanGenericProcessException(
        error, header.dest_x, header.dest_y, header.dest_cpu, f"{error}"
    )


def _wrap_io(flight: _InFlight, error: SpinnmanIOException) -> SpinnmanException:
    header = flight.request.header
    return SpinnmanGenericProcessException(
        error,
        header.dest_x,
        header.dest_y,
        header.dest_cpu,
        f"{describe(flight.request)}: {error}",
    )


def scp_stream(
    connection: Connection,
    requests: Iterable[SCPRequest],
    on_reply: ReplyCallback,
    options: EngineOptions = DEFAULT_OPTIONS,
    *,
    on_error: ErrorCallback | None = None,
) -> int:
    """Send ``requests`` through ``connection``, calling ``on_reply`` for each RC_OK reply.

    Parameters
    ----------
    connection:
        Any :class:`~pyspalloc.transceiver.connections.Connection`.
    requests:
        The requests; consumed lazily, so a generator can stream a large transfer. Their
        sequence numbers are replaced.
    on_reply:
        ``on_reply(index, response)`` for each successful reply, in arrival order.
    options:
        At most ``options.window`` requests are in flight; each is tried at most
        ``1 + options.retries`` times. Once replies have been seen, a request is resent
        after an adaptive timeout (smoothed round trip plus four deviations, doubling per
        resend) of at least ``options.min_timeout`` and at most ``options.timeout``;
        :meth:`EngineOptions.once` gives a fixed timer (for commands that must not run
        twice or take long on the board).
    on_error:
        If given, a failed request is reported here and the burst goes on; otherwise
        the first failure is raised.

    Returns
    -------
    int
        The number of requests taken from ``requests``.

    Raises
    ------
    SpinnmanTimeoutException
        A request got no reply in any of its attempts.
    SpinnmanGenericProcessException
        A request was answered with a non-retry error code (wrapping
        :class:`SpinnmanUnexpectedResponseCodeException`), kept getting retry codes, or
        the connection failed (wrapping :class:`SpinnmanIOException`).
    """
    window, timeout, retries = options.window, options.timeout, options.retries
    clock = time.monotonic
    timer = _RoundTrip(timeout, options.min_timeout)
    timer.restore(connection)
    pending: dict[int, _InFlight] = {}
    source = enumerate(requests)
    exhausted = False
    taken = 0

    def fail(flight: _InFlight, error: SpinnmanException) -> None:
        del pending[flight.request.sequence]
        if on_error is None:
            raise error
        on_error(flight.index, flight.request, error)

    def arm(flight: _InFlight, now: float) -> None:
        wait = timer.wait(flight.attempts)
        flight.sent_at = now
        flight.deadline = now + wait
        flight.waited += wait
        flight.awaiting = True

    def send(flight: _InFlight, now: float) -> None:
        arm(flight, now)
        try:
            connection.send(flight.data)
        except SpinnmanIOException as error:
            fail(flight, _wrap_io(flight, error))

    # Optional connection methods: several datagrams in one write (a proxy channel puts
    # them in one websocket write), and a cheap "a reply is waiting" test, so that
    # every waiting reply is taken before the window is topped up in one write.
    send_many: Callable[[list[bytes]], None] | None = getattr(connection, "send_many", None)
    has_input: Callable[[], bool] | None = getattr(connection, "has_input", None)

    def send_all(flights: list[_InFlight]) -> None:
        now = clock()
        if send_many is None or len(flights) == 1:
            for flight in flights:
                send(flight, now)
            return
        for flight in flights:
            arm(flight, now)
        try:
            send_many([flight.data for flight in flights])
        except SpinnmanIOException as error:
            for flight in flights:
                if flight.request.sequence in pending:
                    fail(flight, _wrap_io(flight, error))

    while True:
        # Top up the window, unless requests are in flight and more of their replies
        # are already waiting to be taken (never skip it with nothing in flight: stale
        # replies left by an earlier burst must not end this one before it starts).
        if (
            not exhausted
            and len(pending) < window
            and not (pending and has_input is not None and has_input())
        ):
            fresh: list[_InFlight] = []
            while len(pending) < window:
                try:
                    index, request = next(source)
                except StopIteration:
                    exhausted = True
                    break
                taken += 1
                sequence = next_sequence()
                while sequence in pending:
                    sequence = next_sequence()
                if request.sequence != sequence:
                    request = with_sequence(request, sequence)
                flight = _InFlight(index, request, request.to_bytes())
                pending[sequence] = flight
                fresh.append(flight)
            if fresh:
                send_all(fresh)
        if not pending:
            timer.remember(connection)
            return taken

        # Deal with every request whose timer has run out.
        now = clock()
        earliest = min(flight.deadline for flight in pending.values())
        if earliest <= now:
            for flight in [f for f in pending.values() if f.deadline <= now]:
                if flight.awaiting:
                    flight.reasons.append("timeout")
                    if flight.attempts > retries:
                        fail(flight, _failure(flight, timeout, retries))
                        continue
                    flight.attempts += 1
                send(flight, now)
            continue

        # Wait for a reply, at most until the earliest timer runs out.
        try:
            data = connection.receive(earliest - now)
        except SpinnmanTimeoutException:
            continue
        except SpinnmanIOException as error:
            wrapped = _wrap_io(next(iter(pending.values())), error)
            if on_error is None:
                raise wrapped from error
            for flight in list(pending.values()):
                fail(flight, wrapped)
            continue
        try:
            response = SCPResponse.from_bytes(data)
        except WireFormatError:
            continue  # not an SCP reply: ignore it
        flight_or_none = pending.get(response.sequence)
        if flight_or_none is None or not flight_or_none.awaiting:
            continue  # unknown, duplicate or stale reply
        flight = flight_or_none
        result = response.result
        if flight.attempts == 1:
            first = timer.srtt is None
            timer.sample(clock() - flight.sent_at)
            if first:  # requests sent before any reply waited the full timeout
                for other in pending.values():
                    if other.awaiting:
                        wait = timer.wait(other.attempts)
                        if other.sent_at + wait < other.deadline:
                            other.waited -= other.deadline - other.sent_at - wait
                            other.deadline = other.sent_at + wait
        if result == SCPResult.RC_OK:
            del pending[response.sequence]
            on_reply(flight.index, response)
        elif result in RETRY_RESULTS:
            flight.reasons.append(result.name)
            if flight.attempts > retries:
                fail(flight, _failure(flight, timeout, retries))
                continue
            flight.attempts += 1
            backoff = min(RETRY_BACKOFF * 2 ** (len(flight.reasons) - 1), MAX_RETRY_BACKOFF)
            flight.awaiting = False
            flight.deadline = clock() + backoff
        else:
            fail(flight, _bad_result(flight.request, result))


def scp_burst(
    connection: Connection,
    requests: Iterable[SCPRequest],
    options: EngineOptions = DEFAULT_OPTIONS,
) -> list[SCPResponse]:
    """Send ``requests`` and return their RC_OK replies in request order.

    See :func:`scp_stream` for the parameters and the errors raised.
    """
    replies: dict[int, SCPResponse] = {}

    def keep(index: int, response: SCPResponse) -> None:
        replies[index] = response

    count = scp_stream(connection, requests, keep, options)
    return [replies[index] for index in range(count)]


def scp_call(
    connection: Connection, request: SCPRequest, options: EngineOptions = DEFAULT_OPTIONS
) -> SCPResponse:
    """Send one request and return its RC_OK reply (see :func:`scp_stream`).

    ``options.window`` does not matter here. For a command that is slow on the board or
    must not run twice, pass ``options.once()`` so it is only resent after the full
    timeout.
    """
    return scp_burst(connection, [request], options)[0]
