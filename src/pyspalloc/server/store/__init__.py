"""Persistence of the service: SQLAlchemy 2 models behind the :class:`Store` facade."""

from __future__ import annotations

from pyspalloc.server.store.accounts import (
    AccountsMixin,
    SessionInfo,
    TokenInfo,
    UserInfo,
    UserInUse,
)
from pyspalloc.server.store.history import HistoricJob, HistoryMixin
from pyspalloc.server.store.jobs import (
    BoardGrant,
    JobInfo,
    JobsMixin,
    QueuedRequest,
    RequestSpec,
    TooManyJobs,
)
from pyspalloc.server.store.machines import BoardInfo, BoardReport, MachineInfo, MachinesMixin
from pyspalloc.server.store.memberships import GroupInUse, MemberInfo, MembershipsMixin
from pyspalloc.server.store.models import JobState, TrustLevel
from pyspalloc.server.store.quotas import GroupQuota, NoSuchGroup, QuotasMixin


class Store(AccountsMixin, MachinesMixin, JobsMixin, QuotasMixin, HistoryMixin, MembershipsMixin):
    """The service database: one engine URL, SQLite (WAL) or PostgreSQL.

    Parameters
    ----------
    url:
        SQLAlchemy URL, e.g. ``sqlite:////path/db.sqlite3`` or
        ``postgresql+psycopg://user@host/db``. Tables are created if missing.
    """


__all__ = [
    "BoardGrant",
    "BoardInfo",
    "BoardReport",
    "GroupInUse",
    "GroupQuota",
    "HistoricJob",
    "JobInfo",
    "JobState",
    "MachineInfo",
    "MemberInfo",
    "NoSuchGroup",
    "QueuedRequest",
    "RequestSpec",
    "SessionInfo",
    "Store",
    "TokenInfo",
    "TooManyJobs",
    "TrustLevel",
    "UserInUse",
    "UserInfo",
]
