"""Read and admin queries used only by the HTML user interface.

These are plain functions over a :class:`~pyspalloc.server.store.Store` (they use its
transaction helpers and models) so that the web pages need no change to the store facade.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import case, delete, func, select

from pyspalloc.server.store.accounts import UserInfo
from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.machines import BoardInfo, MachineInfo, board_info
from pyspalloc.server.store.models import (
    BoardRow,
    GroupRow,
    JobRow,
    JobState,
    MachineRow,
    MembershipRow,
    UserRow,
)


@dataclass(frozen=True)
class MachineSummary:
    """A machine with its board and job counts."""

    machine: MachineInfo
    boards: int
    in_use: int
    dead: int
    jobs: int

    @property
    def utilisation(self) -> float:
        """Percentage of the machine's boards held by jobs."""
        return 100.0 * self.in_use / self.boards if self.boards else 0.0


@dataclass(frozen=True)
class JobSummary:
    """One row of the job list."""

    id: int
    machine_name: str
    owner_id: int
    owner: str
    state: JobState
    create_time: float
    keepalive_time: float
    keepalive_interval: float
    boards: int
    powered: bool


@dataclass(frozen=True)
class GroupInfo:
    """An accounting group and how many members it has."""

    id: int
    name: str
    quota: float | None
    members: int


def _machine(row: MachineRow) -> MachineInfo:
    return MachineInfo(
        row.id, row.name, tuple(json.loads(row.tags)), row.width, row.height, row.in_service
    )


def machine_summaries(store: StoreBase, *, include_out_of_service: bool) -> list[MachineSummary]:
    """Return every machine (in service only, unless asked) with its counts, by name."""
    with store._read() as s:
        query = select(MachineRow).order_by(MachineRow.name)
        if not include_out_of_service:
            query = query.where(MachineRow.in_service)
        machines = list(s.scalars(query))
        counts = {
            mid: (int(total), int(used or 0), int(dead or 0))
            for mid, total, used, dead in s.execute(
                select(
                    BoardRow.machine_id,
                    func.count(),
                    func.count(BoardRow.job_id),
                    func.sum(case((BoardRow.functioning.is_(False), 1), else_=0)),
                ).group_by(BoardRow.machine_id)
            )
        }
        jobs: dict[int, int] = {
            mid: int(n)
            for mid, n in s.execute(
                select(JobRow.machine_id, func.count())
                .where(JobRow.state != int(JobState.DESTROYED))
                .group_by(JobRow.machine_id)
            )
        }
        out = []
        for m in machines:
            total, used, dead = counts.get(m.id, (0, 0, 0))
            out.append(MachineSummary(_machine(m), total, used, dead, int(jobs.get(m.id, 0))))
        return out


def machine_by_name(store: StoreBase, name: str) -> MachineInfo | None:
    """Return the machine called ``name`` whether or not it is in service."""
    with store._read() as s:
        row = s.scalar(select(MachineRow).where(MachineRow.name == name))
        return None if row is None else _machine(row)


def job_summaries(
    store: StoreBase, *, deleted: bool, limit: int = 200, machine_id: int | None = None
) -> list[JobSummary]:
    """Return jobs, newest first, with their board counts (live jobs only unless asked)."""
    board_counts = (
        select(
            BoardRow.job_id.label("job_id"),
            func.count().label("n"),
            func.min(case((BoardRow.powered.is_(True), 1), else_=0)).label("on"),
        )
        .where(BoardRow.job_id.is_not(None))
        .group_by(BoardRow.job_id)
        .subquery()
    )
    query = (
        select(JobRow, MachineRow.name, UserRow.name, board_counts.c.n, board_counts.c.on)
        .join(MachineRow, MachineRow.id == JobRow.machine_id)
        .join(UserRow, UserRow.id == JobRow.owner_id)
        .outerjoin(board_counts, board_counts.c.job_id == JobRow.id)
        .order_by(JobRow.id.desc())
        .limit(limit)
    )
    if not deleted:
        query = query.where(JobRow.state != int(JobState.DESTROYED))
    if machine_id is not None:
        query = query.where(JobRow.machine_id == machine_id)
    with store._read() as s:
        return [
            JobSummary(
                row.id,
                machine,
                row.owner_id,
                owner,
                JobState(row.state),
                row.create_time,
                row.keepalive_time,
                row.keepalive_interval,
                int(n or 0),
                bool(n) and bool(on),
            )
            for row, machine, owner, n, on in s.execute(query)
        ]


def set_board_functioning(store: StoreBase, board_id: int, functioning: bool) -> BoardInfo | None:
    """Take a board into (True) or out of (False) service; None if there is no such board.

    The allocator only hands out boards whose ``functioning`` flag is set, so this
    affects every allocation made after it; a job holding the board keeps it.
    """
    with store._write() as s:
        row = s.get(BoardRow, board_id)
        if row is None:
            return None
        row.functioning = functioning
        info = board_info(row)
    store.boards_changed()
    return info


def unlock_user(store: StoreBase, user_id: int) -> None:
    """Clear a user's failed-login count and lock."""
    with store._write() as s:
        row = s.get(UserRow, user_id)
        if row is not None:
            row.failures = 0
            row.locked_until = 0.0


def list_groups(store: StoreBase) -> list[GroupInfo]:
    """Return every group with its member count, by name."""
    with store._read() as s:
        counts: dict[int, int] = {
            gid: int(n)
            for gid, n in s.execute(
                select(MembershipRow.group_id, func.count()).group_by(MembershipRow.group_id)
            )
        }
        return [
            GroupInfo(g.id, g.name, g.quota, int(counts.get(g.id, 0)))
            for g in s.scalars(select(GroupRow).order_by(GroupRow.name))
        ]


def get_group(store: StoreBase, group_id: int) -> GroupInfo | None:
    """Return one group, if it exists."""
    with store._read() as s:
        row = s.get(GroupRow, group_id)
        if row is None:
            return None
        members = s.scalar(
            select(func.count())
            .select_from(MembershipRow)
            .where(MembershipRow.group_id == group_id)
        )
        return GroupInfo(row.id, row.name, row.quota, int(members or 0))


def create_group(store: StoreBase, name: str, quota: float | None) -> GroupInfo:
    """Create a group (``quota`` in board-seconds, None for unlimited).

    Raises
    ------
    ValueError
        If the name is taken.
    """
    with store._write() as s:
        if s.scalar(select(GroupRow).where(GroupRow.name == name)) is not None:
            raise ValueError(f"group {name!r} already exists")
        row = GroupRow(name=name, quota=quota)
        s.add(row)
        s.flush()
        return GroupInfo(row.id, row.name, row.quota, 0)


def group_members(store: StoreBase, group_id: int) -> list[str]:
    """Return the names of a group's members, sorted."""
    with store._read() as s:
        return list(
            s.scalars(
                select(UserRow.name)
                .join(MembershipRow, MembershipRow.user_id == UserRow.id)
                .where(MembershipRow.group_id == group_id)
                .order_by(UserRow.name)
            )
        )


def user_groups(store: StoreBase, user_id: int) -> list[str]:
    """Return the names of the groups a user belongs to, sorted."""
    with store._read() as s:
        return list(
            s.scalars(
                select(GroupRow.name)
                .join(MembershipRow, MembershipRow.group_id == GroupRow.id)
                .where(MembershipRow.user_id == user_id)
                .order_by(GroupRow.name)
            )
        )


def add_member(store: StoreBase, group_id: int, user: UserInfo) -> bool:
    """Add a user to a group; False if already a member or the group is gone."""
    with store._write() as s:
        if s.get(GroupRow, group_id) is None:
            return False
        found = s.scalar(
            select(MembershipRow).where(
                MembershipRow.group_id == group_id, MembershipRow.user_id == user.id
            )
        )
        if found is not None:
            return False
        s.add(MembershipRow(user_id=user.id, group_id=group_id))
        return True


def remove_member(store: StoreBase, group_id: int, user: UserInfo) -> bool:
    """Remove a user from a group; False if they were not a member."""
    with store._write() as s:
        result = s.execute(
            delete(MembershipRow).where(
                MembershipRow.group_id == group_id, MembershipRow.user_id == user.id
            )
        )
        return bool(getattr(result, "rowcount", 0))
