"""Accounting groups of jobs and their board-second quotas.

A group's usage is the board-seconds of its jobs still in the live tables (running ones
up to now) plus what its jobs moved to history had used; what is left is its quota
minus that usage (a NULL quota is unlimited).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.models import (
    BoardAllocationRow,
    CollabGroupRow,
    GroupRow,
    GroupUsageRow,
    JobRow,
    JobState,
    MembershipRow,
)

_GROUPS_OF = (
    select(GroupRow.id, GroupRow.name, GroupRow.quota)
    .join(MembershipRow, MembershipRow.group_id == GroupRow.id)
    .where(MembershipRow.user_id == bindparam("user_id"))
    .order_by(GroupRow.name)
)


class NoSuchGroup(LookupError):
    """The job cannot be accounted to a group; the message says why."""


@dataclass(frozen=True)
class GroupQuota:
    """A group's quota (None: unlimited), its usage and what is left, in board-seconds."""

    id: int
    name: str
    quota: float | None
    used: float
    collab: bool

    @property
    def remaining(self) -> float | None:
        """Board-seconds left (may be negative); None when unlimited."""
        return None if self.quota is None else self.quota - self.used


def job_usage(boards: int, allocated: float | None, finished: float | None, now: float) -> float:
    """Board-seconds of a job: boards times the time from allocation to its end (or now)."""
    if allocated is None:
        return 0.0
    end = finished if finished is not None else now
    return float(boards) * max(0.0, float(end) - float(allocated))


class QuotasMixin(StoreBase):
    """Which group a job is accounted to, and how much each group has used."""

    def _live_usage(self, s: Session, now: float, group_id: int | None = None) -> list[Any]:
        """Rows (id, group_id, state, usage) of live-table jobs that were allocated."""
        sizes = (
            select(BoardAllocationRow.job_id, func.count().label("n"))
            .group_by(BoardAllocationRow.job_id)
            .subquery()
        )
        query = (
            select(JobRow.id, JobRow.group_id, JobRow.state, JobRow.allocation_time,
                   JobRow.finish_time, sizes.c.n)
            .join(sizes, sizes.c.job_id == JobRow.id)
            .where(JobRow.allocation_time.is_not(None), JobRow.group_id.is_not(None))
        )  # fmt: skip
        if group_id is not None:
            query = query.where(JobRow.group_id == group_id)
        return [
            (r.id, r.group_id, r.state, job_usage(r.n, r.allocation_time, r.finish_time, now))
            for r in s.execute(query)
        ]

    def _usage_by_group(self, s: Session, now: float) -> dict[int, float]:
        used: dict[int, float] = defaultdict(float)
        for gid, seconds in s.execute(select(GroupUsageRow.group_id, GroupUsageRow.board_seconds)):
            used[gid] += float(seconds)
        for _, gid, _, usage in self._live_usage(s, now):
            used[gid] += usage
        return used

    def group_for(self, user_id: int, name: str | None) -> tuple[int | None, float | None]:
        """Return (group id, quota) to account a user's job against.

        With no ``name`` the user must belong to exactly one group (as in the Java
        server), so a member of several groups cannot escape their quotas.

        Raises
        ------
        NoSuchGroup
            If ``name`` is not a group the user belongs to, or no name is given and the
            user is in no group or in several.
        """
        with self._rconn() as conn:
            groups = conn.execute(_GROUPS_OF, {"user_id": user_id}).all()
        if name is not None:
            groups = [g for g in groups if g[1] == name]
            if not groups:
                raise NoSuchGroup(f"group {name} does not exist or the owner is not a member")
        if not groups:
            raise NoSuchGroup("the owner is not a member of any group")
        if len(groups) > 1:
            names = ", ".join(g[1] for g in groups)
            raise NoSuchGroup(f"the owner is in several groups ({names}): name one in 'group'")
        return groups[0][0], groups[0][2]

    def collab_group(self, collab: str, user_id: int, *, create: bool) -> tuple[int, float | None]:
        """Return (group id, quota) of the NMPI collab ``collab`` for a member.

        With ``create`` (an admin or NMPI service creating on a user's behalf) the
        collab's group is made on first use with :attr:`default_collab_quota` and the
        user is made a member.

        Raises
        ------
        NoSuchGroup
            If the collab has no group (and ``create`` is false), its name belongs to a
            group that is not a collab, or the user is not a member.
        """
        with self._write() as s:
            group = s.scalar(select(GroupRow).where(GroupRow.name == collab))
            if group is None:
                if not create:
                    raise NoSuchGroup(f"collab {collab} does not exist or the owner is not in it")
                group = GroupRow(name=collab, quota=self.default_collab_quota)
                s.add(group)
                s.flush()
                s.add(CollabGroupRow(group_id=group.id))
            elif s.get(CollabGroupRow, group.id) is None:
                raise NoSuchGroup(f"{collab} is a group, not a collab: give it as 'group'")
            member = s.scalar(
                select(MembershipRow).where(
                    MembershipRow.group_id == group.id, MembershipRow.user_id == user_id
                )
            )
            if member is None:
                if not create:
                    raise NoSuchGroup(f"collab {collab} does not exist or the owner is not in it")
                s.add(MembershipRow(user_id=user_id, group_id=group.id))
            return group.id, group.quota

    def group_usage(self, group_id: int, now: float) -> float:
        """Return the board-seconds used by all jobs of a group (history included)."""
        with self._read() as s:
            moved = s.scalar(
                select(GroupUsageRow.board_seconds).where(GroupUsageRow.group_id == group_id)
            )
            live = sum(float(u) for *_, u in self._live_usage(s, now, group_id))
            return float(moved or 0.0) + live

    def group_quotas(self, now: float, user_id: int | None = None) -> list[GroupQuota]:
        """Return the quota, usage and remainder of every group (only ``user_id``'s)."""
        query = select(GroupRow.id, GroupRow.name, GroupRow.quota).order_by(GroupRow.name)
        if user_id is not None:
            query = query.join(MembershipRow, MembershipRow.group_id == GroupRow.id).where(
                MembershipRow.user_id == user_id
            )
        with self._read() as s:
            rows = s.execute(query).all()
            collabs = set(s.scalars(select(CollabGroupRow.group_id)))
            used = self._usage_by_group(s, now)
        return [
            GroupQuota(gid, name, None if q is None else float(q), used.get(gid, 0.0),
                       gid in collabs)
            for gid, name, q in rows
        ]  # fmt: skip

    def over_quota_jobs(self, now: float) -> list[int]:
        """Return running jobs whose group has no board-seconds left (usage >= quota)."""
        with self._read() as s:
            quotas: dict[int, float] = {
                gid: float(q)
                for gid, q in s.execute(select(GroupRow.id, GroupRow.quota))
                if q is not None
            }
            if not quotas:
                return []
            used = self._usage_by_group(s, now)
            spent = {gid for gid, quota in quotas.items() if used.get(gid, 0.0) >= quota}
            return [
                job_id
                for job_id, gid, state, _ in self._live_usage(s, now)
                if state != int(JobState.DESTROYED) and gid in spent
            ]
