"""Group administration: memberships by id, group deletion and quota changes by id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.models import GroupRow, JobRow, MembershipRow, UserRow


class GroupInUse(ValueError):
    """A group cannot be deleted: records (jobs) are accounted to it."""


@dataclass(frozen=True)
class MemberInfo:
    """One membership of a user in a group."""

    id: int
    group_id: int
    group_name: str
    user_id: int
    user_name: str


_MEMBERS = (
    select(MembershipRow.id, GroupRow.id, GroupRow.name, UserRow.id, UserRow.name)
    .join(GroupRow, GroupRow.id == MembershipRow.group_id)
    .join(UserRow, UserRow.id == MembershipRow.user_id)
)


class MembershipsMixin(StoreBase):
    """Memberships and group deletion, as the admin REST API names them (by id)."""

    def memberships(
        self, *, group_id: int | None = None, user_id: int | None = None
    ) -> list[MemberInfo]:
        """Return the memberships of a group or of a user (by group, then user name)."""
        query = _MEMBERS.order_by(GroupRow.name, UserRow.name)
        if group_id is not None:
            query = query.where(MembershipRow.group_id == group_id)
        if user_id is not None:
            query = query.where(MembershipRow.user_id == user_id)
        with self._read() as s:
            return [MemberInfo(*row) for row in s.execute(query)]

    def membership(self, member_id: int) -> MemberInfo | None:
        """Return one membership by its id."""
        with self._read() as s:
            row = s.execute(_MEMBERS.where(MembershipRow.id == member_id)).first()
            return None if row is None else MemberInfo(*row)

    def add_membership(self, group_id: int, user_id: int) -> MemberInfo | None:
        """Add a user to a group; None if they already are a member (or either is gone)."""
        with self._write() as s:
            if s.get(GroupRow, group_id) is None or s.get(UserRow, user_id) is None:
                return None
            found = s.scalar(
                select(MembershipRow.id).where(
                    MembershipRow.group_id == group_id, MembershipRow.user_id == user_id
                )
            )
            if found is not None:
                return None
            row = MembershipRow(user_id=user_id, group_id=group_id)
            s.add(row)
            s.flush()
            member_id = row.id
        return self.membership(member_id)

    def remove_membership(self, member_id: int) -> bool:
        """Delete a membership by id; False if there is none."""
        with self._write() as s:
            result = s.execute(delete(MembershipRow).where(MembershipRow.id == member_id))
            return bool(getattr(result, "rowcount", 0))

    def delete_group(self, group_id: int) -> str | None:
        """Delete a group and its memberships; return its name (None: no such group).

        Raises
        ------
        GroupInUse
            Jobs are accounted to the group (their records keep it).
        """
        with self._write() as s:
            row = s.get(GroupRow, group_id)
            if row is None:
                return None
            jobs = s.scalar(
                select(func.count()).select_from(JobRow).where(JobRow.group_id == group_id)
            )
            if jobs:
                raise GroupInUse(f"group {row.name} has {jobs} job(s) accounted to it")
            s.execute(delete(MembershipRow).where(MembershipRow.group_id == group_id))
            name = row.name
            s.delete(row)
            return name
