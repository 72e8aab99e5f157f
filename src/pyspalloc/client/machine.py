"""Spalloc-managed machines as the client sees them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from pyspalloc.client.session import Session, SessionAware, SpallocHTTPError
from pyspalloc.client.utils import join_url, quote_segment


class SpallocMachine(ABC):
    """Represents a Spalloc-controlled machine.

    Don't make this yourself. Use :class:`~pyspalloc.client.SpallocClient` instead.
    """

    @property
    @abstractmethod
    def name(self) -> str:
        """The name of the machine."""

    @property
    @abstractmethod
    def tags(self) -> frozenset[str]:
        """The tags of the machine."""

    @property
    @abstractmethod
    def width(self) -> int:
        """The width of the machine, in triads (3 boards each)."""

    @property
    @abstractmethod
    def height(self) -> int:
        """The height of the machine, in triads (3 boards each)."""

    @property
    def area(self) -> tuple[int, int]:
        """Area of the machine, in triads: ``(width, height)``."""
        return self.width, self.height

    @property
    @abstractmethod
    def dead_boards(self) -> list[dict[str, Any]]:
        """The dead or out-of-service boards (board-coordinate objects)."""

    @property
    @abstractmethod
    def dead_links(self) -> list[Any]:
        """The dead or out-of-service links (pairs of ``{"board", "direction"}``)."""

    @abstractmethod
    def where_is_logical(self, x: int, y: int, z: int) -> dict[str, Any] | None:
        """The where-is object of the board at triad ``(x, y, z)``; ``None`` if none."""

    @abstractmethod
    def where_is_physical(self, cabinet: int, frame: int, board: int) -> dict[str, Any] | None:
        """The where-is object of a board by physical coordinates; ``None`` if none."""

    @abstractmethod
    def where_is_chip(self, x: int, y: int) -> dict[str, Any] | None:
        """The where-is object of the board holding chip ``(x, y)``; ``None`` if none."""

    @abstractmethod
    def where_is_ip(self, address: str) -> dict[str, Any] | None:
        """The where-is object of the board with this IP address; ``None`` if none."""


class _SpallocMachine(SessionAware, SpallocMachine):
    """A machine described by one entry of ``GET {srv}machines``.

    Parameters
    ----------
    session:
        The session to talk to the service through.
    machine_data:
        The machine's JSON object.
    """

    def __init__(self, session: Session, machine_data: Mapping[str, Any]):
        name = str(machine_data["name"])
        url = machine_data.get("uri") or join_url(session.srv_url, "machines", quote_segment(name))
        super().__init__(session, str(url))
        self._name = name
        self._tags = frozenset(str(t) for t in machine_data.get("tags") or ())
        self._width = int(machine_data.get("width") or 0)
        self._height = int(machine_data.get("height") or 0)
        self._dead_boards = list(machine_data.get("dead-boards") or [])
        self._dead_links = list(machine_data.get("dead-links") or [])

    @property
    def name(self) -> str:
        return self._name

    @property
    def tags(self) -> frozenset[str]:
        return self._tags

    @property
    def width(self) -> int:
        return self._width

    @property
    def height(self) -> int:
        return self._height

    @property
    def dead_boards(self) -> list[dict[str, Any]]:
        return list(self._dead_boards)

    @property
    def dead_links(self) -> list[Any]:
        return list(self._dead_links)

    @property
    def url(self) -> str:
        """The machine's resource URL."""
        return self._url

    def _where_is(self, lookup: str, **query: Any) -> dict[str, Any] | None:
        try:
            reply = self._session.get(join_url(self._url, lookup), **query)
        except SpallocHTTPError as error:
            if error.status == 404:
                return None
            raise
        if reply.status_code == 204:
            return None
        result: dict[str, Any] = reply.json()
        return result

    def where_is_logical(self, x: int, y: int, z: int) -> dict[str, Any] | None:
        """Locate a board by triad coordinates.

        Returns
        -------
        dict or None
            The service's where-is object, or ``None`` if there is no such board.
        """
        return self._where_is("logical-board", x=int(x), y=int(y), z=int(z))

    def where_is_physical(self, cabinet: int, frame: int, board: int) -> dict[str, Any] | None:
        """Locate a board by physical coordinates (see :meth:`where_is_logical`)."""
        return self._where_is(
            "physical-board", cabinet=int(cabinet), frame=int(frame), board=int(board)
        )

    def where_is_chip(self, x: int, y: int) -> dict[str, Any] | None:
        """Locate the board holding global chip ``(x, y)`` (see :meth:`where_is_logical`)."""
        return self._where_is("chip", x=int(x), y=int(y))

    def where_is_ip(self, address: str) -> dict[str, Any] | None:
        """Locate a board by its IP address (see :meth:`where_is_logical`)."""
        return self._where_is("board-ip", address=str(address))

    def __repr__(self) -> str:
        return (
            f"SpallocMachine(name={self._name!r}, tags={sorted(self._tags)}, "
            f"width={self._width}, height={self._height}, "
            f"dead_boards={len(self._dead_boards)}, dead_links={len(self._dead_links)})"
        )
