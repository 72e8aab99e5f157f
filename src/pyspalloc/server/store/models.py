"""SQLAlchemy 2 table models of the service database.

Times are stored as float seconds since the Unix epoch, which behaves the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from enum import IntEnum

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class JobState(IntEnum):
    """Job states, with the wire names and database codes of the Java server."""

    UNKNOWN = 0
    QUEUED = 1
    POWER = 2
    READY = 3
    DESTROYED = 4


class TrustLevel(IntEnum):
    """User trust levels; each grants the roles of the ones below it."""

    BASIC = 0
    READER = 1
    USER = 2
    ADMIN = 3


class Base(DeclarativeBase):
    """Declarative base of all models."""


class MachineRow(Base):
    """A machine known to the service."""

    __tablename__ = "machines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    tags: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    in_service: Mapped[bool] = mapped_column(Boolean, default=True)


class BmpRow(Base):
    """A board management processor (one per frame)."""

    __tablename__ = "bmps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    cabinet: Mapped[int] = mapped_column(Integer)
    frame: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(64))


class BoardRow(Base):
    """A board; ``job_id`` is set while a job holds it (until powered off)."""

    __tablename__ = "boards"
    __table_args__ = (UniqueConstraint("machine_id", "x", "y", "z"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    z: Mapped[int] = mapped_column(Integer)
    cabinet: Mapped[int] = mapped_column(Integer)
    frame: Mapped[int] = mapped_column(Integer)
    board_num: Mapped[int] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bmp_id: Mapped[int | None] = mapped_column(ForeignKey("bmps.id"), nullable=True)
    functioning: Mapped[bool] = mapped_column(Boolean, default=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True, index=True)
    powered: Mapped[bool] = mapped_column(Boolean, default=False)
    power_off_time: Mapped[float] = mapped_column(Float, default=0.0)


class DeadLinkRow(Base):
    """A link that does not work, given by one end (board and direction)."""

    __tablename__ = "dead_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
    direction: Mapped[int] = mapped_column(Integer)


class UserRow(Base):
    """A local user account."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    trust: Mapped[int] = mapped_column(Integer, default=int(TrustLevel.USER))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)
    created: Mapped[float] = mapped_column(Float, default=0.0)


class GroupRow(Base):
    """An accounting group; ``quota`` in board-seconds, NULL for unlimited."""

    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    quota: Mapped[float | None] = mapped_column(Float, nullable=True)


class MembershipRow(Base):
    """Membership of a user in a group."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "group_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), index=True)


class SessionRow(Base):
    """An HTTP session; the key is the SHA-256 of the ``JSESSIONID`` value."""

    __tablename__ = "sessions"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    csrf: Mapped[str] = mapped_column(String(128))
    created: Mapped[float] = mapped_column(Float)
    last_access: Mapped[float] = mapped_column(Float, index=True)


class TokenRow(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[float] = mapped_column(Float)


class TokenRevocationRow(Base):
    """The revocation of one bearer token (a table of its own, so that databases made
    before tokens could be revoked gain it from ``create_all`` unchanged)."""

    __tablename__ = "token_revocations"
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), primary_key=True)
    revoked: Mapped[float] = mapped_column(Float)


class SessionTokenRow(Base):
    """The bearer token a session was created from (sessions made by password have none).

    ``session_key`` is deliberately not a foreign key: rows are removed with their session.
    """

    __tablename__ = "session_tokens"
    session_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)


class JobRow(Base):
    """A job; the allocation is described by ``width``..``root_*`` once made."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), nullable=True)
    state: Mapped[int] = mapped_column(Integer, default=int(JobState.QUEUED), index=True)
    keepalive_interval: Mapped[float] = mapped_column(Float)
    keepalive_time: Mapped[float] = mapped_column(Float)
    keepalive_host: Mapped[str | None] = mapped_column(String(128), nullable=True)
    create_time: Mapped[float] = mapped_column(Float)
    finish_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    original_request: Mapped[str] = mapped_column(Text, default="{}")
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    depth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    root_id: Mapped[int | None] = mapped_column(ForeignKey("boards.id"), nullable=True)
    allocation_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: power wanted by the pending power change (True on, False off)
    power_target: Mapped[bool] = mapped_column(Boolean, default=True)
    #: whether the pending power change comes from the queue (failure re-queues)
    from_queue: Mapped[bool] = mapped_column(Boolean, default=True)


class JobRequestRow(Base):
    """The queued allocation request of a job (deleted once allocated)."""

    __tablename__ = "job_requests"
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    num_boards: Mapped[int | None] = mapped_column(Integer, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    board_id: Mapped[int | None] = mapped_column(ForeignKey("boards.id"), nullable=True)
    max_dead_boards: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[float] = mapped_column(Float, default=1.0)
    importance: Mapped[float] = mapped_column(Float, default=0.0)


class BoardAllocationRow(Base):
    """History: which boards a job was given."""

    __tablename__ = "board_allocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
    time: Mapped[float] = mapped_column(Float)


class BoardReportRow(Base):
    """A user's report of a problem with a board."""

    __tablename__ = "board_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    issue: Mapped[str] = mapped_column(Text)
    time: Mapped[float] = mapped_column(Float)


class CollabGroupRow(Base):
    """Marks a group as the accounting group of an NMPI collab (``nmpi-collab``).

    Its own table (not a column of ``groups``), so older databases gain it unchanged;
    no foreign key, so deleting a group is never blocked by it.
    """

    __tablename__ = "collab_groups"
    group_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class GroupUsageRow(Base):
    """Board-seconds used by a group's jobs that have been moved to history."""

    __tablename__ = "group_usage_moved"
    group_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    board_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class JobHistoryRow(Base):
    """A job that ended more than the grace period ago, moved out of ``jobs``.

    Names are copied, not referenced, so history outlives users, groups and machines.
    """

    __tablename__ = "job_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    machine: Mapped[str] = mapped_column(String(128))
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    owner: Mapped[str] = mapped_column(String(128))
    group_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    group_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    create_time: Mapped[float] = mapped_column(Float)
    allocation_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    finish_time: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    original_request: Mapped[str] = mapped_column(Text, default="{}")
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    depth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    num_boards: Mapped[int] = mapped_column(Integer, default=0)
    board_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    moved: Mapped[float] = mapped_column(Float)


class AllocationHistoryRow(Base):
    """A board a historical job was given (copied from ``board_allocations``)."""

    __tablename__ = "board_allocation_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job_history.id"), index=True)
    board_id: Mapped[int] = mapped_column(Integer)
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    z: Mapped[int] = mapped_column(Integer)
    cabinet: Mapped[int] = mapped_column(Integer)
    frame: Mapped[int] = mapped_column(Integer)
    board_num: Mapped[int] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    time: Mapped[float] = mapped_column(Float)
