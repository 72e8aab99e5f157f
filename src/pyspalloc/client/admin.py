"""The admin REST API of a Spalloc service (``{srv}/admin``), for ADMIN users.

``AdminClient(client.session)`` drives users, groups and memberships (the Java server's
records), boards, machines and board reports. Users and groups are named by name or id;
every refusal of the service raises :class:`~pyspalloc.client.session.SpallocHTTPError`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from pyspalloc.client.session import Session, SpallocHTTPError


def _where(
    triad: tuple[int, int, int] | None,
    physical: tuple[int, int, int] | None,
    address: str | None,
) -> dict[str, Any]:
    if triad is not None:
        return dict(zip(("x", "y", "z"), triad, strict=True))
    if physical is not None:
        return dict(zip(("cabinet", "frame", "board"), physical, strict=True))
    if address is not None:
        return {"address": address}
    raise ValueError("name a board by triad, physical coordinates or address")


class AdminClient:
    """Admin operations over a logged-in :class:`Session` (the user must be an ADMIN)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.root = session.srv_url + "admin/"

    # ---- helpers ---------------------------------------------------------------------
    def _json(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        url = path if "://" in path else self.root + path
        if method == "GET":
            reply = self.session.get(url, **query)
        elif method == "POST":
            reply = self.session.post(url, body, **query)
        elif method == "PUT":
            reply = self.session.put(url, json.dumps(body), **query)
        else:
            reply = self.session.delete(url, **query)
        if reply.status_code == 204 or not reply.content:
            return None
        if reply.headers.get("Content-Type", "").startswith("application/json"):
            return reply.json()
        return reply.text

    def _url(self, kind: str, key: str | int) -> str:
        """The URL of a user or group named by name or id."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            return f"{self.root}{kind}/{int(key)}"
        listing: dict[str, str] = self._json("GET", kind)
        if key not in listing:
            raise SpallocHTTPError("GET", self.root + kind, 404, f"no such {kind[:-1]} {key}")
        return listing[key]

    # ---- users -----------------------------------------------------------------------
    def list_users(self) -> dict[str, str]:
        """Every user: name -> URL."""
        users: dict[str, str] = self._json("GET", "users")
        return users

    def get_user(self, user: str | int) -> dict[str, Any]:
        """A user's record (``userId``, ``userName``, ``trustLevel``, ``enabled``, ...)."""
        record: dict[str, Any] = self._json("GET", self._url("users", user))
        return record

    def create_user(
        self, name: str, password: str, role: str = "USER", enabled: bool = True
    ) -> dict[str, Any]:
        """Create a local user; return its record."""
        body = {"userName": name, "password": password, "trustLevel": role, "enabled": enabled}
        record: dict[str, Any] = self._json("POST", "users", body)
        return record

    def update_user(self, user: str | int, **fields: Any) -> dict[str, Any]:
        """Change ``password``, ``enabled``, ``trustLevel`` or ``locked`` (False) of a user."""
        record: dict[str, Any] = self._json("PUT", self._url("users", user), fields)
        return record

    def delete_user(self, user: str | int) -> str:
        """Delete a user (the service refuses if they own jobs); return its message."""
        return str(self._json("DELETE", self._url("users", user)))

    # ---- groups ----------------------------------------------------------------------
    def list_groups(self) -> dict[str, str]:
        """Every group: name -> URL."""
        groups: dict[str, str] = self._json("GET", "groups")
        return groups

    def get_group(self, group: str | int) -> dict[str, Any]:
        """A group's record (``groupId``, ``groupName``, ``quota``, ``members``)."""
        record: dict[str, Any] = self._json("GET", self._url("groups", group))
        return record

    def create_group(self, name: str, quota: float | None = None) -> dict[str, Any]:
        """Create a group (``quota`` in board-seconds, None: unlimited)."""
        record: dict[str, Any] = self._json("POST", "groups", {"groupName": name, "quota": quota})
        return record

    def set_quota(self, group: str | int, quota: float | None) -> dict[str, Any]:
        """Set a group's quota in board-seconds (None: unlimited)."""
        record: dict[str, Any] = self._json("PUT", self._url("groups", group), {"quota": quota})
        return record

    def delete_group(self, group: str | int) -> str:
        """Delete a group (refused if jobs are accounted to it); return its message."""
        return str(self._json("DELETE", self._url("groups", group)))

    def add_member(self, group: str | int, user: str) -> dict[str, Any]:
        """Add a user to a group; return the membership record."""
        url = self._url("groups", group) + "/members"
        record: dict[str, Any] = self._json("POST", url, {"userName": user})
        return record

    def remove_member(self, group: str | int, user: str) -> None:
        """Remove a user from a group."""
        url = self._url("groups", group)
        members: dict[str, str] = self.get_group(group)["members"]
        if user not in members:
            raise SpallocHTTPError("DELETE", url, 404, f"{user} is not a member")
        self._json("DELETE", members[user])

    # ---- boards and machines -----------------------------------------------------------
    def board_enabled(
        self,
        machine: str,
        *,
        triad: tuple[int, int, int] | None = None,
        physical: tuple[int, int, int] | None = None,
        address: str | None = None,
    ) -> bool:
        """Whether a board is in service."""
        where = _where(triad, physical, address)
        return str(self._json("GET", "board", machine=machine, **where)).strip() == "true"

    def set_board_enabled(
        self,
        machine: str,
        enabled: bool,
        *,
        triad: tuple[int, int, int] | None = None,
        physical: tuple[int, int, int] | None = None,
        address: str | None = None,
    ) -> bool:
        """Take a board into or out of service; return its new state."""
        where = _where(triad, physical, address)
        reply = self.session.put(
            self.root + "board", "true" if enabled else "false", machine=machine, **where
        )
        return reply.text.strip() == "true"

    def list_machines(self) -> list[dict[str, Any]]:
        """Every machine, in service or not, with board and job counts."""
        machines: list[dict[str, Any]] = self._json("GET", "machines")["machines"]
        return machines

    def import_machines(self, definitions: dict[str, Any]) -> list[dict[str, Any]]:
        """Add machines (the Java server's JSON format) to the running service."""
        imported: list[dict[str, Any]] = self._json("POST", "import", definitions)["imported"]
        return imported

    def set_in_service(self, machine: str, in_service: bool) -> bool:
        """Take a whole machine into or out of service; return its new state."""
        url = f"{self.root}machines/{quote(machine, safe='')}/in-service"
        return self.session.put(url, "true" if in_service else "false").text.strip() == "true"

    def retag(self, machine: str, tags: list[str]) -> dict[str, Any]:
        """Replace a machine's tags; return the machine."""
        record: dict[str, Any] = self._json("PUT", f"machines/{quote(machine, safe='')}/tags", tags)
        return record

    # ---- board reports ---------------------------------------------------------------
    def board_reports(self) -> list[dict[str, Any]]:
        """Every board problem report, newest first."""
        reports: list[dict[str, Any]] = self._json("GET", "board-reports")["reports"]
        return reports

    def clear_board_reports(self, board_id: int) -> int:
        """Forget a board's reports; return how many were cleared."""
        return int(self._json("DELETE", f"board-reports/{int(board_id)}")["cleared"])
