"""Accounting groups of jobs and their board-second quotas."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.models import (
    BoardAllocationRow,
    GroupRow,
    JobRow,
    JobState,
    MembershipRow,
)

_GROUPS_OF = (
    select(GroupRow.id, GroupRow.name, GroupRow.quota)
    .join(MembershipRow, MembershipRow.group_id == GroupRow.id)
    .where(MembershipRow.user_id == bindparam("user_id"))
)


class QuotasMixin(StoreBase):
    """Which group a job is accounted to, and how much each group has used."""

    def _usage_rows(self, s: Session, now: float, group_id: int | None = None) -> list[Any]:
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
        return list(s.execute(query))

    @staticmethod
    def _usage(row: Any, now: float) -> float:
        end = float(row.finish_time if row.finish_time is not None else now)
        return float(row.n) * max(0.0, end - float(row.allocation_time))

    def group_for(self, user_id: int, name: str | None) -> tuple[int | None, float | None]:
        """Return (group id, quota) to account a user's job against.

        Raises
        ------
        LookupError
            If ``name`` is not a group the user belongs to.
        """
        with self._rconn() as conn:
            groups = conn.execute(_GROUPS_OF, {"user_id": user_id}).all()
        if name is not None:
            groups = [g for g in groups if g[1] == name]
            if not groups:
                raise LookupError(name)
        if len(groups) != 1:
            return None, None
        return groups[0][0], groups[0][2]

    def group_usage(self, group_id: int, now: float) -> float:
        """Return the board-seconds used by all jobs of a group."""
        with self._read() as s:
            return sum(self._usage(r, now) for r in self._usage_rows(s, now, group_id))

    def over_quota_jobs(self, now: float) -> list[int]:
        """Return live jobs whose own usage exceeds their group's quota."""
        with self._read() as s:
            quotas: dict[int, float] = {
                gid: float(q)
                for gid, q in s.execute(select(GroupRow.id, GroupRow.quota))
                if q is not None
            }
            if not quotas:
                return []
            return [
                r.id
                for r in self._usage_rows(s, now)
                if r.state != int(JobState.DESTROYED)
                and r.group_id in quotas
                and self._usage(r, now) > quotas[r.group_id]
            ]
