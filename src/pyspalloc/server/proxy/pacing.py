"""Pacing proxied SCP requests per board: SC&MP holds only a few SDP messages at once.

A real board's SC&MP keeps about 8 SDP messages; more arriving at once are dropped. A
remote user keeps many more requests in flight (the Internet's round trip must be
filled), and a websocket frame may carry dozens of them, so the service forwards at
most :data:`BOARD_WINDOW` requests that expect a reply to one board at a time, from all
channels to that board together, and holds the rest (bounded) until replies come back.
A request unanswered after :data:`HOLD_S` no longer counts (it or its reply was lost).
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["BOARD_WINDOW", "HOLD_S", "BoardPacer", "pacer_for", "release_pacer"]

#: Requests expecting a reply outstanding at one board (SC&MP's SDP buffers).
BOARD_WINDOW = 8
#: Seconds after which an unanswered request stops counting.
HOLD_S = 0.1
#: Requests waiting at the service per board; more are dropped, as UDP would.
MAX_WAITING = 8192
#: Bytes of requests waiting at the service per board; more are dropped.
MAX_WAITING_BYTES = 4 << 20
_REPLY_EXPECTED = 0x80
_FLAGS = 2  # the SDP flags byte, after the two pad bytes


class BoardPacer:
    """Keeps at most ``window`` SCP requests unanswered at one board.

    Parameters
    ----------
    loop:
        The event loop the channels run on.
    window:
        Requests expecting a reply allowed at the board at once.
    hold_s:
        Seconds after which an unanswered request stops counting.
    max_waiting:
        Requests held back at most (and :data:`MAX_WAITING_BYTES` of them); more are
        dropped.
    """

    __slots__ = (
        "_out",
        "_queued",
        "_queued_bytes",
        "_timer",
        "_waiting",
        "dropped",
        "duplicates",
        "hold_s",
        "loop",
        "users",
        "window",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        window: int = BOARD_WINDOW,
        hold_s: float = HOLD_S,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self.loop = loop
        self.window = window
        self.hold_s = hold_s
        self._waiting: deque[tuple[asyncio.DatagramTransport, bytes]] = deque(maxlen=max_waiting)
        #: (transport id, datagram) of every waiting request, to spot resends
        self._queued: set[tuple[int, bytes]] = set()
        self._queued_bytes = 0
        #: resends dropped because the same request was still waiting
        self.duplicates = 0
        #: send times of the requests the board has not answered
        self._out: deque[float] = deque()
        self._timer: asyncio.TimerHandle | None = None
        #: requests dropped because too many were waiting
        self.dropped = 0
        #: channels using this pacer
        self.users = 0

    @property
    def waiting(self) -> int:
        """Requests held back now."""
        return len(self._waiting)

    def send(self, transport: asyncio.DatagramTransport, data: bytes) -> None:
        """Send ``data`` to the board now, or as soon as the board has room."""
        if len(data) <= _FLAGS or not data[_FLAGS] & _REPLY_EXPECTED:
            transport.sendto(data)  # no reply will free a buffer: not paced
            return
        waiting = self._waiting
        now = self.loop.time()
        if not waiting and self._room(now):
            self._sent(now)
            transport.sendto(data)
            return
        key = (id(transport), data)
        if key in self._queued:
            self.duplicates += 1
            return
        if len(waiting) == waiting.maxlen or self._queued_bytes + len(data) > MAX_WAITING_BYTES:
            self.dropped += 1
            return
        waiting.append((transport, data))
        self._queued.add(key)
        self._queued_bytes += len(data)
        self._arm()

    def answered(self) -> None:
        """A datagram came back from the board: one request fewer is outstanding."""
        if self._out:
            self._out.popleft()
        if self._waiting:
            self._release()

    def _room(self, now: float) -> bool:
        out = self._out
        while out and out[0] + self.hold_s <= now:
            out.popleft()
        return len(out) < self.window

    def _sent(self, now: float) -> None:
        self._out.append(now)

    def _release(self) -> None:
        waiting = self._waiting
        now = self.loop.time()
        while waiting and self._room(now):
            transport, data = waiting.popleft()
            self._queued.discard((id(transport), data))
            self._queued_bytes -= len(data)
            if transport.is_closing():
                continue
            self._sent(now)
            transport.sendto(data)
        if waiting:
            self._arm()

    def _arm(self) -> None:
        if self._timer is None and self._out:
            # when the oldest unanswered request stops counting
            self._timer = self.loop.call_at(self._out[0] + self.hold_s, self._expired)

    def _expired(self) -> None:
        self._timer = None
        self._release()

    def close(self) -> None:
        """Drop everything held back and stop the timer."""
        self._waiting.clear()
        self._queued.clear()
        self._queued_bytes = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


_PACERS: dict[tuple[asyncio.AbstractEventLoop, str], BoardPacer] = {}


def pacer_for(ip: str) -> BoardPacer:
    """The pacer of board ``ip`` on the running loop (shared by all its channels)."""
    loop = asyncio.get_running_loop()
    pacer = _PACERS.get((loop, ip))
    if pacer is None:
        pacer = _PACERS[(loop, ip)] = BoardPacer(loop)
    pacer.users += 1
    return pacer


def release_pacer(ip: str, pacer: BoardPacer) -> None:
    """A channel using ``pacer`` closed; forget the pacer when no channel uses it."""
    pacer.users -= 1
    if pacer.users <= 0:
        pacer.close()
        key = (pacer.loop, ip)
        if _PACERS.get(key) is pacer:
            del _PACERS[key]
