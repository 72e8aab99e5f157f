"""BoardPacer: at most 8 SCP requests unanswered at a board; the rest wait, bounded."""

from __future__ import annotations

import asyncio
from typing import Any

from pyspalloc.server.proxy.pacing import (
    MAX_WAITING_BYTES,
    BoardPacer,
    pacer_for,
    release_pacer,
)
from pyspalloc.wire.scp import scp_request


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closing = False

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closing


def _requests(count: int, reply: bool = True) -> list[bytes]:
    flags = 0x87 if reply else 0x07
    return [scp_request(0, 0, 0, 0, sequence=s, flags=flags).to_bytes() for s in range(count)]


def test_pacer_holds_back_beyond_the_window_and_releases_on_replies() -> None:
    async def run() -> None:
        pacer = BoardPacer(asyncio.get_running_loop(), window=8, hold_s=10.0, max_waiting=20)
        transport: Any = FakeTransport()
        datagrams = _requests(32)
        for data in datagrams:
            pacer.send(transport, data)
        assert transport.sent == datagrams[:8]
        assert pacer.waiting == 20 and pacer.dropped == 4  # bounded
        for _ in range(3):
            pacer.answered()
        assert transport.sent == datagrams[:11]
        for data in _requests(5, reply=False):  # no reply expected: not paced
            pacer.send(transport, data)
        assert len(transport.sent) == 16
        pacer.send(transport, datagrams[20])  # a resend of a waiting request
        assert pacer.duplicates == 1 and pacer.waiting == 17
        other: Any = FakeTransport()
        pacer.send(other, datagrams[20])  # the same bytes from another channel: not a resend
        assert pacer.duplicates == 1 and pacer.waiting == 18

    asyncio.run(run())


def test_waiting_bytes_are_bounded() -> None:
    async def run() -> None:
        pacer = BoardPacer(asyncio.get_running_loop(), window=1, hold_s=10.0)
        transport: Any = FakeTransport()
        big = [bytes([0, 0, 0x87]) + i.to_bytes(4, "little") + bytes(60000) for i in range(200)]
        for data in big:
            pacer.send(transport, data)
        assert len(transport.sent) == 1
        assert pacer.waiting * 60007 <= MAX_WAITING_BYTES < (pacer.waiting + 1) * 60007
        assert pacer.dropped == 199 - pacer.waiting

    asyncio.run(run())


def test_unanswered_requests_stop_counting_after_the_hold_time() -> None:
    async def run() -> None:
        pacer = BoardPacer(asyncio.get_running_loop(), window=2, hold_s=0.05)
        transport: Any = FakeTransport()
        for data in _requests(4):
            pacer.send(transport, data)
        assert len(transport.sent) == 2
        await asyncio.sleep(0.2)  # the board never answered: both slots freed by time
        assert len(transport.sent) == 4

    asyncio.run(run())


def test_pacers_are_shared_per_board_and_forgotten() -> None:
    async def run() -> None:
        a = pacer_for("10.0.0.1")
        assert pacer_for("10.0.0.1") is a and pacer_for("10.0.0.2") is not a
        release_pacer("10.0.0.1", a)
        release_pacer("10.0.0.1", a)
        assert pacer_for("10.0.0.1") is not a

    asyncio.run(run())
