"""The SCP engine against a scripted responder: window, loss, duplicates, retry codes."""

from __future__ import annotations

import random
import select
import threading
import time
from collections.abc import Iterator

import pytest

from pyspalloc.exceptions import (
    SpinnmanGenericProcessException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
    SpinnmanUnexpectedResponseCodeException,
)
from pyspalloc.transceiver import engine
from pyspalloc.transceiver.connections import UDPConnection
from pyspalloc.transceiver.engine import (
    EngineOptions,
    make_request,
    scp_burst,
    scp_call,
    scp_stream,
)
from pyspalloc.transceiver.memory import fill_memory
from pyspalloc.wire.scp import SCPCommand, SCPRequest, SCPResponse, SCPResult, reply_to

from .responder import Responder, echo_policy


@pytest.fixture
def make_responder() -> Iterator[type[Responder]]:
    made: list[Responder] = []

    def factory(*args: object, **kwargs: object) -> Responder:
        responder = Responder(*args, **kwargs)  # type: ignore[arg-type]
        made.append(responder)
        return responder

    yield factory  # type: ignore[misc]
    for responder in made:
        responder.close()


def connect(responder: Responder) -> UDPConnection:
    return UDPConnection(responder.host, responder.port)


def reads(connection: UDPConnection, count: int) -> list[SCPRequest]:
    return [make_request(connection, 0, 0, 0, SCPCommand.READ, i, 4, 2) for i in range(count)]


def args_of(replies: list[SCPResponse]) -> list[int]:
    return [reply.args(1)[0] for reply in replies]


def test_burst_returns_replies_in_request_order(make_responder: type[Responder]) -> None:
    responder = make_responder()
    with connect(responder) as connection:
        replies = scp_burst(connection, reads(connection, 100))
    assert args_of(replies) == list(range(100))


def test_window_is_never_exceeded(make_responder: type[Responder]) -> None:
    responder = make_responder(hold=0.02)
    with connect(responder) as connection:
        replies = scp_burst(connection, reads(connection, 40), EngineOptions(window=8))
    assert args_of(replies) == list(range(40))
    assert responder.max_outstanding == 8


def test_smaller_window(make_responder: type[Responder]) -> None:
    responder = make_responder(hold=0.02)
    with connect(responder) as connection:
        scp_burst(connection, reads(connection, 10), EngineOptions(window=3))
    assert responder.max_outstanding == 3


def test_lost_replies_are_resent_with_the_same_bytes(make_responder: type[Responder]) -> None:
    # Drop the first answer to every third request.
    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        if request.arg1 % 3 == 0 and seen == 0:
            return []
        return echo_policy(request, seen)

    responder = make_responder(policy)
    with connect(responder) as connection:
        replies = scp_burst(connection, reads(connection, 30), EngineOptions(timeout=0.05))
    assert args_of(replies) == list(range(30))
    by_seq: dict[int, list[bytes]] = {}
    for request in responder.received:
        by_seq.setdefault(request.sequence, []).append(request.to_bytes())
    resent = [copies for copies in by_seq.values() if len(copies) > 1]
    assert len(resent) == 10
    assert all(len(set(copies)) == 1 for copies in resent)


def test_adaptive_resend_recovers_quickly(make_responder: type[Responder]) -> None:
    # The first answer to every fourth request is lost; with a 1 s timeout a fixed timer
    # would need >= 1 s per loss, the adaptive one needs a few tens of ms.
    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        if request.arg1 % 4 == 1 and seen == 0:
            return []
        return echo_policy(request, seen)

    responder = make_responder(policy)
    with connect(responder) as connection:
        start = time.monotonic()
        replies = scp_burst(connection, reads(connection, 40), EngineOptions(timeout=1.0))
        elapsed = time.monotonic() - start
    assert args_of(replies) == list(range(40))
    assert elapsed < 0.9


def test_fixed_timer_when_min_timeout_is_the_timeout(make_responder: type[Responder]) -> None:
    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        if request.arg1 == 3 and seen == 0:
            return []
        return echo_policy(request, seen)

    responder = make_responder(policy)
    with connect(responder) as connection:
        start = time.monotonic()
        scp_burst(connection, reads(connection, 5), EngineOptions(timeout=0.3, min_timeout=0.3))
        assert time.monotonic() - start >= 0.29


def test_operations_keep_the_fixed_timer_they_are_given(
    make_responder: type[Responder],
) -> None:
    # fill_memory used to drop options.min_timeout: after a warm-up burst the lost
    # reply was resent on the adaptive timer (tens of ms), not after the full timeout.
    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        if request.command == SCPCommand.FILL and seen == 0:
            return []
        return echo_policy(request, seen)

    responder = make_responder(policy)
    options = EngineOptions(timeout=0.3).once()
    with connect(responder) as connection:
        scp_burst(connection, reads(connection, 20), options)
        start = time.monotonic()
        fill_memory(connection, 0, 0, 0x60000000, 0, 16, options)
        assert time.monotonic() - start >= 0.29
    assert sum(request.command == SCPCommand.FILL for request in responder.received) == 2


def test_options_say_once_and_slow() -> None:
    options = EngineOptions(window=4, timeout=0.5, retries=3)
    assert options.once() == EngineOptions(4, 0.5, 3, 0.5)
    assert options.slow(2.0) == EngineOptions(4, 2.0, 3, options.min_timeout)
    assert options.slow(0.1) == options
    assert options.changed(retries=1) == EngineOptions(4, 0.5, 1, options.min_timeout)
    assert options.changed() == options


def test_random_loss_is_survived(make_responder: type[Responder]) -> None:
    chance = random.Random(5)
    lock = threading.Lock()

    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        with lock:
            lost = chance.random() < 0.2
        return [] if lost else echo_policy(request, seen)

    responder = make_responder(policy)
    with connect(responder) as connection:
        replies = scp_burst(
            connection, reads(connection, 200), EngineOptions(timeout=0.02, retries=20)
        )
    assert args_of(replies) == list(range(200))


def test_duplicate_and_unknown_replies_are_dropped(make_responder: type[Responder]) -> None:
    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        stray = reply_to(request, SCPResult.RC_OK, b"\xee" * 4, 0, 0)
        stray = SCPResponse(
            stray.header, stray.result, (request.sequence + 30000) & 0xFFFF, stray.payload
        )
        good = echo_policy(request, seen)[0]
        return [stray, good, good, good]

    responder = make_responder(policy)
    with connect(responder) as connection:
        replies = scp_burst(connection, reads(connection, 50))
        # The duplicates of the last burst must not confuse the next one.
        again = scp_burst(connection, reads(connection, 50))
    assert args_of(replies) == list(range(50))
    assert args_of(again) == list(range(50))


class BatchingConnection(UDPConnection):
    """A UDP connection with the engine's optional ``send_many`` and ``has_input``."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.batches: list[int] = []

    def send_many(self, datas: list[bytes]) -> None:
        self.batches.append(len(datas))
        for data in datas:
            self.send(data)

    def has_input(self) -> bool:
        readable, _, _ = select.select([self._socket], [], [], 0)
        return bool(readable)


def test_stale_replies_waiting_do_not_end_the_next_burst(make_responder: type[Responder]) -> None:
    """Replies left over from a burst (duplicates) are waiting when the next one starts:
    it must still send every request and return every reply (it once returned none)."""

    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        return echo_policy(request, seen) * 4

    responder = make_responder(policy)
    with BatchingConnection(responder.host, responder.port) as connection:
        first = scp_burst(connection, reads(connection, 40), EngineOptions(window=16))
        time.sleep(0.05)  # let the duplicates arrive
        assert connection.has_input()
        again = scp_burst(connection, reads(connection, 40), EngineOptions(window=16))
    assert args_of(first) == list(range(40))
    assert args_of(again) == list(range(40))
    assert responder.wait_received(80) == 80
    assert max(connection.batches) > 1  # the window went out in batches


def test_timeout_after_bounded_retries(make_responder: type[Responder]) -> None:
    responder = make_responder(lambda request, seen: [])
    with connect(responder) as connection, pytest.raises(SpinnmanTimeoutException):
        scp_call(connection, reads(connection, 1)[0], EngineOptions(timeout=0.02, retries=3))
    assert responder.wait_received(4) == 4
    assert len({request.sequence for request in responder.received}) == 1


def test_retry_codes_are_honoured(make_responder: type[Responder]) -> None:
    codes = [SCPResult.RC_TIMEOUT, SCPResult.RC_P2P_BUSY, SCPResult.RC_LEN]

    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        if seen < len(codes):
            return [reply_to(request, codes[seen], b"", 0, 0)]
        return echo_policy(request, seen)

    responder = make_responder(policy)
    with connect(responder) as connection:
        replies = scp_burst(connection, reads(connection, 5))
    assert args_of(replies) == list(range(5))
    assert responder.wait_received(20) == 20


def test_retry_codes_run_out(make_responder: type[Responder]) -> None:
    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        return [reply_to(request, SCPResult.RC_P2P_TIMEOUT, b"", 0, 0)]

    responder = make_responder(policy)
    with connect(responder) as connection, pytest.raises(SpinnmanGenericProcessException) as info:
        scp_call(connection, reads(connection, 1)[0], EngineOptions(retries=2))
    assert "RC_P2P_TIMEOUT" in str(info.value)
    assert responder.wait_received(3) == 3


def test_error_code_names_core_and_command(make_responder: type[Responder]) -> None:
    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        return [reply_to(request, SCPResult.RC_ARG, b"", 0, 0)]

    responder = make_responder(policy)
    with connect(responder) as connection:
        request = make_request(connection, 3, 4, 5, SCPCommand.WRITE, 0, 4, 2, b"abcd")
        with pytest.raises(SpinnmanGenericProcessException) as info:
            scp_call(connection, request)
    error = info.value
    assert (error.x, error.y, error.p) == (3, 4, 5)
    assert isinstance(error.exception, SpinnmanUnexpectedResponseCodeException)
    assert "WRITE" in str(error) and "RC_ARG" in str(error)
    assert responder.wait_received(1) == 1


def test_on_error_reports_and_continues(make_responder: type[Responder]) -> None:
    def policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
        if request.arg1 == 7:
            return [reply_to(request, SCPResult.RC_ROUTE, b"", 0, 0)]
        return echo_policy(request, seen)

    responder = make_responder(policy)
    failed: list[int] = []
    got: dict[int, int] = {}
    with connect(responder) as connection:
        scp_stream(
            connection,
            reads(connection, 12),
            lambda index, reply: got.__setitem__(index, reply.args(1)[0]),
            on_error=lambda index, request, error: failed.append(index),
        )
    assert failed == [7]
    assert sorted(got) == [i for i in range(12) if i != 7]


def test_sequence_numbers_wrap(make_responder: type[Responder]) -> None:
    responder = make_responder()
    engine._sequence_counter = iter(range(65530, 65550))  # type: ignore[assignment]
    try:
        with connect(responder) as connection:
            replies = scp_burst(connection, reads(connection, 12))
    finally:
        import itertools

        engine._sequence_counter = itertools.count()
    assert args_of(replies) == list(range(12))
    assert [request.sequence for request in responder.received] == [
        *range(65530, 65536),
        *range(6),
    ]


def test_lazy_requests_are_consumed_as_the_window_allows(
    make_responder: type[Responder],
) -> None:
    responder = make_responder()
    produced: list[int] = []
    with connect(responder) as connection:

        def generate() -> Iterator[SCPRequest]:
            for request in reads(connection, 20):
                produced.append(request.arg1)
                yield request

        count = scp_stream(connection, generate(), lambda index, reply: None)
    assert count == 20
    assert produced == list(range(20))


def test_unreachable_port_fails_fast_as_io_error() -> None:
    import socket

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.1.250.3", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: the kernel answers ICMP port unreachable
    with UDPConnection("127.1.250.3", port) as connection:
        start = time.monotonic()
        with pytest.raises(SpinnmanGenericProcessException) as info:
            scp_call(connection, reads(connection, 1)[0], EngineOptions(timeout=0.5, retries=3))
        assert time.monotonic() - start < 0.4
    assert isinstance(info.value.exception, SpinnmanIOException)


def test_concurrent_bursts_on_separate_connections(make_responder: type[Responder]) -> None:
    responder = make_responder()
    results: dict[int, list[int]] = {}

    def work(worker: int) -> None:
        with connect(responder) as connection:
            results[worker] = args_of(scp_burst(connection, reads(connection, 200)))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {n: list(range(200)) for n in range(4)}
