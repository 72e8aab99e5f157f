"""A tiny scripted SCP responder on a loopback UDP socket, for engine tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspalloc.wire.errors import WireFormatError
from pyspalloc.wire.scp import SCPRequest, SCPResponse, SCPResult, reply_to

#: A policy gets (request, how many times this seq was seen before) and returns the
#: replies to send (possibly none, possibly several).
Policy = Callable[[SCPRequest, int], list[SCPResponse]]


def ok(request: SCPRequest, payload: bytes = b"") -> SCPResponse:
    """An RC_OK reply to ``request``."""
    return reply_to(request, SCPResult.RC_OK, payload, 0, 0)


def echo_policy(request: SCPRequest, seen: int) -> list[SCPResponse]:
    """Answer RC_OK with arg1 as the payload."""
    return [ok(request, request.arg1.to_bytes(4, "little"))]


@dataclass
class Responder:
    """Answers SCP requests on ``host``:port according to ``policy``.

    With ``hold`` > 0 replies are held back until no request has arrived for ``hold``
    seconds, so the client's window fills up.
    """

    policy: Policy = echo_policy
    host: str = "127.1.250.1"
    hold: float = 0.0
    received: list[SCPRequest] = field(default_factory=list)
    max_outstanding: int = 0
    _seen: dict[int, int] = field(default_factory=dict)
    _outstanding: set[int] = field(default_factory=set)
    _answered: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((self.host, 0))
        self.socket.settimeout(0.01)
        self.port = self.socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        held: list[tuple[SCPRequest, tuple[str, int]]] = []
        last = time.monotonic()
        while not self._stop.is_set():
            try:
                data, address = self.socket.recvfrom(65535)
            except TimeoutError:
                if held and time.monotonic() - last >= self.hold:
                    for request, source in held:
                        self._answer(request, source)
                    held.clear()
                continue
            try:
                request = SCPRequest.from_bytes(data)
            except WireFormatError:
                continue
            self.received.append(request)
            if request.sequence not in self._answered:
                self._outstanding.add(request.sequence)
            self.max_outstanding = max(self.max_outstanding, len(self._outstanding))
            last = time.monotonic()
            if self.hold > 0:
                held.append((request, address))
            else:
                self._answer(request, address)

    def _answer(self, request: SCPRequest, address: tuple[str, int]) -> None:
        seen = self._seen.get(request.sequence, 0)
        self._seen[request.sequence] = seen + 1
        replies = self.policy(request, seen)
        for reply in replies:
            if reply.result == SCPResult.RC_OK:
                self._outstanding.discard(request.sequence)
                self._answered.add(request.sequence)
            self.socket.sendto(reply.to_bytes(), address)
        if any(r.result != SCPResult.RC_OK for r in replies):
            self._outstanding.discard(request.sequence)

    def wait_received(self, count: int, timeout: float = 2.0) -> int:
        """Wait until ``count`` requests have arrived (or ``timeout``); return how many."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)  # let any extra (unexpected) request arrive too
        return len(self.received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.socket.close()
