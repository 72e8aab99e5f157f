"""The states of a Spalloc job."""

from __future__ import annotations

from enum import IntEnum


class SpallocState(IntEnum):
    """The possible states of a Spalloc job.

    Jobs start as QUEUED, move to POWER once boards are allocated, to READY once the
    boards are powered, and finally to DESTROYED. UNKNOWN means something odd.
    """

    #: The job is in an unknown state
    UNKNOWN = 0
    #: The job is waiting for boards
    QUEUED = 1
    #: The job's boards are being powered on or off
    POWER = 2
    #: The job's boards are ready to use
    READY = 3
    #: The job has ended
    DESTROYED = 4

    @classmethod
    def from_name(cls, name: object) -> SpallocState:
        """Parse a wire state name, case-insensitively.

        Parameters
        ----------
        name:
            The state as the service wrote it, e.g. ``"READY"``.

        Returns
        -------
        SpallocState
            The state, or ``UNKNOWN`` for anything unrecognised.
        """
        if isinstance(name, str):
            member = cls.__members__.get(name.strip().upper())
            if member is not None:
                return member
        return cls.UNKNOWN
