"""SC&MP's few SDP buffers on a board's Ethernet chip: what a burst of requests overruns.

SC&MP keeps each SDP message it receives from Ethernet in one of a handful of buffers
(about 8) until it has handled it and sent the reply; a message arriving while every
buffer is taken is dropped. The model: SC&MP handles one message every ``service_s``
seconds in arrival order, and a message holds its buffer from its arrival until SC&MP
would have finished it or until its reply has actually left, whichever is first (the
virtual board answers as soon as it can, so a sender never sees a reply while the model
still holds that buffer). A sender that keeps at most ``capacity`` requests unanswered
therefore never loses one; a burst of more than ``capacity`` arriving faster than
SC&MP's pace loses the excess, as on a real board.
"""

from __future__ import annotations

from collections import deque

__all__ = ["DEFAULT_SDP_BUFFERS", "DEFAULT_SERVICE_S", "SdpBuffers"]

#: SDP messages SC&MP holds at once.
DEFAULT_SDP_BUFFERS = 8
#: Seconds SC&MP spends per request in the model (SC&MP manages some 10-20 thousand
#: SCP requests a second).
DEFAULT_SERVICE_S = 50e-6


class SdpBuffers:
    """Admission of SDP messages to one board's SC&MP (see the module docstring).

    Parameters
    ----------
    capacity:
        Messages held at once; 0 disables the limit (every message is admitted at once).
    service_s:
        Seconds SC&MP spends on each message.
    """

    __slots__ = ("_busy_until", "_held", "_unsent", "capacity", "dropped", "service_s")

    def __init__(
        self, capacity: int = DEFAULT_SDP_BUFFERS, service_s: float = DEFAULT_SERVICE_S
    ) -> None:
        if capacity < 0 or service_s < 0:
            raise ValueError("capacity and service time must be >= 0")
        self.capacity = capacity
        self.service_s = service_s
        #: Messages dropped because every buffer was taken.
        self.dropped = 0
        #: when each held message frees its buffer, in arrival order
        self._held: deque[float] = deque()
        #: held messages (the newest) whose replies have not left yet
        self._unsent = 0
        self._busy_until = 0.0

    def admit(self, now: float) -> float | None:
        """Take a buffer for a message arriving at ``now``.

        Returns
        -------
        float | None
            When SC&MP will have handled it (its reply is due then), or None if every
            buffer is taken and the message is dropped.
        """
        if not self.capacity:
            return now
        held = self._held
        while held and held[0] <= now and len(held) > self._unsent:
            held.popleft()
        if len(held) >= self.capacity and sum(1 for t in held if t > now) >= self.capacity:
            self.dropped += 1
            return None
        done = max(now, self._busy_until) + self.service_s
        self._busy_until = done
        held.append(done)
        self._unsent += 1
        return done

    def sent(self, now: float) -> None:
        """The replies to every message admitted so far have left at ``now``."""
        held = self._held
        for index in range(len(held) - self._unsent, len(held)):
            if held[index] > now:
                held[index] = now
        self._unsent = 0
        # everything received has been answered: SC&MP is idle from now on
        self._busy_until = min(self._busy_until, now)

    def clear(self) -> None:
        """Forget held messages (power off or reboot)."""
        self._held.clear()
        self._unsent = 0
        self._busy_until = 0.0
