"""Users, groups, bearer tokens and HTTP sessions."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.models import (
    BoardReportRow,
    GroupRow,
    JobRow,
    MembershipRow,
    SessionRow,
    SessionTokenRow,
    TokenRevocationRow,
    TokenRow,
    TrustLevel,
    UserRow,
)

#: a session's last-access time is only rewritten when it is older than this (s)
_TOUCH_INTERVAL = 15.0


class UserInUse(ValueError):
    """A user cannot be deleted: records (jobs) still name them."""


@dataclass(frozen=True)
class UserInfo:
    """A user as the service sees it."""

    id: int
    name: str
    trust: TrustLevel
    disabled: bool
    password_hash: str | None
    failures: int
    locked_until: float

    @property
    def is_admin(self) -> bool:
        """Whether the user has the ADMIN role."""
        return self.trust >= TrustLevel.ADMIN


@dataclass(frozen=True)
class SessionInfo:
    """An HTTP session (``user`` is None before login)."""

    key: str
    csrf: str
    user: UserInfo | None


@dataclass(frozen=True)
class TokenInfo:
    """A bearer token as listed to operators (never the secret itself)."""

    id: int
    user_id: int
    created: float
    revoked: float | None


def _user(row: UserRow) -> UserInfo:
    return UserInfo(
        row.id,
        row.name,
        TrustLevel(row.trust),
        row.disabled,
        row.password_hash,
        row.failures,
        row.locked_until,
    )


_SESSION_QUERY = (
    select(
        SessionRow.key, SessionRow.csrf, SessionRow.last_access, SessionRow.user_id,
        TokenRevocationRow.token_id, UserRow.id, UserRow.name, UserRow.trust, UserRow.disabled,
        UserRow.password_hash, UserRow.failures, UserRow.locked_until,
    )
    .select_from(SessionRow)
    .outerjoin(UserRow, UserRow.id == SessionRow.user_id)
    .outerjoin(SessionTokenRow, SessionTokenRow.session_key == SessionRow.key)
    .outerjoin(TokenRevocationRow, TokenRevocationRow.token_id == SessionTokenRow.token_id)
    .where(SessionRow.key == bindparam("key"))
)  # fmt: skip


def _end_sessions(s: Session, user_id: int, keep: str | None) -> None:
    """Delete every session of a user except ``keep`` (with their token links)."""
    keys = select(SessionRow.key).where(SessionRow.user_id == user_id)
    if keep is not None:
        keys = keys.where(SessionRow.key != keep)
    s.execute(delete(SessionTokenRow).where(SessionTokenRow.session_key.in_(keys)))
    s.execute(delete(SessionRow).where(SessionRow.key.in_(keys)))


class AccountsMixin(StoreBase):
    """User, group, token and session persistence."""

    # ---- users -------------------------------------------------------------------
    def count_users(self) -> int:
        """Return the number of users."""
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(UserRow)) or 0)

    def create_user(
        self, name: str, password_hash: str | None, trust: TrustLevel = TrustLevel.USER
    ) -> UserInfo:
        """Create a user and a personal group of the same name.

        Raises
        ------
        ValueError
            If the name is taken.
        """
        with self._write() as s:
            if s.scalar(select(UserRow).where(UserRow.name == name)) is not None:
                raise ValueError(f"user {name!r} already exists")
            row = UserRow(
                name=name, password_hash=password_hash, trust=int(trust), created=time.time()
            )
            s.add(row)
            group = s.scalar(select(GroupRow).where(GroupRow.name == name))
            if group is None:
                group = GroupRow(name=name, quota=self.default_user_quota)
                s.add(group)
            s.flush()
            s.add(MembershipRow(user_id=row.id, group_id=group.id))
            return _user(row)

    def get_user(self, name: str) -> UserInfo | None:
        """Return the user called ``name``, if any."""
        with self._read() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            return None if row is None else _user(row)

    def get_user_by_id(self, user_id: int) -> UserInfo | None:
        """Return the user with this id, if any."""
        with self._read() as s:
            row = s.get(UserRow, user_id)
            return None if row is None else _user(row)

    def list_users(self) -> list[UserInfo]:
        """Return all users, by name."""
        with self._read() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]

    def update_user(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        trust: TrustLevel | None = None,
        keep_session: str | None = None,
    ) -> UserInfo | None:
        """Change a user's password hash, disabled flag or trust; None if no such user.

        A new password hash or disabling ends every session of the user (in the same
        transaction) but ``keep_session`` (the hashed id of the session making its own
        password change): re-enabling a user brings no old session back. Bearer tokens
        are kept (a disabled user's tokens are refused while disabled).
        """
        with self._write() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                return None
            if password_hash is not None:
                row.password_hash = password_hash
            if disabled is not None:
                row.disabled = disabled
            if trust is not None:
                row.trust = int(trust)
            if password_hash is not None or disabled:
                s.flush()
                _end_sessions(s, row.id, keep_session)
            return _user(row)

    def delete_user(self, user_id: int) -> str | None:
        """Delete a user with their sessions, tokens and memberships; return their name.

        None if there is no such user. Their board reports are kept without a reporter.

        Raises
        ------
        UserInUse
            The user owns jobs (job records keep their owner): disable them instead.
        """
        with self._write() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                return None
            jobs = s.scalar(
                select(func.count()).select_from(JobRow).where(JobRow.owner_id == user_id)
            )
            if jobs:
                raise UserInUse(f"user {row.name} owns {jobs} job(s); disable the account instead")
            _end_sessions(s, user_id, None)
            tokens = select(TokenRow.id).where(TokenRow.user_id == user_id)
            s.execute(delete(SessionTokenRow).where(SessionTokenRow.token_id.in_(tokens)))
            s.execute(delete(TokenRevocationRow).where(TokenRevocationRow.token_id.in_(tokens)))
            s.execute(delete(TokenRow).where(TokenRow.user_id == user_id))
            s.execute(delete(MembershipRow).where(MembershipRow.user_id == user_id))
            s.execute(
                update(BoardReportRow)
                .where(BoardReportRow.reporter_id == user_id)
                .values(reporter_id=None)
            )
            name = row.name
            s.delete(row)
            return name

    def reserve_login(self, user_id: int, max_failures: int, lock_for: float) -> bool:
        """Count a password attempt of the user *before* it is checked; False if locked.

        The attempt counts as a failure until :meth:`login_succeeded` clears the count,
        so concurrent attempts cannot get past the lock: the ``max_failures``-th attempt
        locks the account for ``lock_for`` seconds, and a lock that has run out starts
        the count afresh.
        """
        now = time.time()
        with self._write() as s:
            row = s.get(UserRow, user_id, with_for_update=True)
            if row is None or row.locked_until > now:
                return False
            if row.locked_until:
                row.failures, row.locked_until = 0, 0.0
            row.failures += 1
            if row.failures >= max_failures:
                row.locked_until = now + lock_for
            return True

    def login_succeeded(self, user_id: int) -> None:
        """Clear the user's failure count and lock after a correct password."""
        with self._wconn_single() as conn:
            conn.execute(
                update(UserRow).where(UserRow.id == user_id).values(failures=0, locked_until=0.0)
            )

    def credential_still_valid(
        self,
        user_id: int,
        role: TrustLevel,
        *,
        session_key: str | None = None,
        token_id: int | None = None,
        password_hash: str | None = None,
    ) -> bool:
        """Whether a connection authenticated earlier may go on.

        True when the user exists, is enabled and has at least ``role``, and each
        credential given is still good: the session (hashed id) still exists, belongs
        to the user and was not made from a token revoked since; the bearer token is
        not revoked; the password hash is still the user's (no password change).
        """
        with self._read() as s:
            row = s.get(UserRow, user_id)
            if row is None or row.disabled or row.trust < int(role):
                return False
            if password_hash is not None and row.password_hash != password_hash:
                return False
            if session_key is not None:
                found = s.execute(
                    select(SessionRow.user_id, TokenRevocationRow.token_id)
                    .outerjoin(SessionTokenRow, SessionTokenRow.session_key == SessionRow.key)
                    .outerjoin(
                        TokenRevocationRow,
                        TokenRevocationRow.token_id == SessionTokenRow.token_id,
                    )
                    .where(SessionRow.key == session_key)
                ).first()
                if found is None or found[0] != user_id or found[1] is not None:
                    return False
            if token_id is not None:
                token = s.get(TokenRow, token_id)
                if token is None or token.user_id != user_id:
                    return False
                if s.get(TokenRevocationRow, token_id) is not None:
                    return False
            return True

    def set_group_quota(self, name: str, quota: float | None) -> bool:
        """Set a group's quota in board-seconds (None: unlimited); False if no such group."""
        with self._write() as s:
            group = s.scalar(select(GroupRow).where(GroupRow.name == name))
            if group is None:
                return False
            group.quota = quota
            return True

    def user_group(self, user_id: int) -> int | None:
        """Return the id of the user's only group, or None if not exactly one."""
        with self._read() as s:
            ids = list(
                s.scalars(select(MembershipRow.group_id).where(MembershipRow.user_id == user_id))
            )
            return ids[0] if len(ids) == 1 else None

    # ---- tokens ------------------------------------------------------------------
    def add_token(self, user_id: int, token_hash: str) -> int:
        """Store the hash of a new bearer token of the user; return the token's id."""
        with self._write() as s:
            row = TokenRow(user_id=user_id, token_hash=token_hash, created=time.time())
            s.add(row)
            s.flush()
            return int(row.id)

    def token_for_hash(
        self, token_hash: str, *, revoked_too: bool = False
    ) -> tuple[UserInfo, int] | None:
        """Return the owner and id of the token with this hash, if any.

        Revoked tokens are not found unless ``revoked_too``.
        """
        with self._read() as s:
            query = (
                select(UserRow, TokenRow.id)
                .join(TokenRow, TokenRow.user_id == UserRow.id)
                .outerjoin(TokenRevocationRow, TokenRevocationRow.token_id == TokenRow.id)
                .where(TokenRow.token_hash == token_hash)
            )
            if not revoked_too:
                query = query.where(TokenRevocationRow.token_id.is_(None))
            found = s.execute(query).first()
            return None if found is None else (_user(found[0]), int(found[1]))

    def user_for_token(self, token_hash: str) -> UserInfo | None:
        """Return the owner of the unrevoked token with this hash, if any."""
        found = self.token_for_hash(token_hash)
        return None if found is None else found[0]

    def list_tokens(self, user_id: int) -> list[TokenInfo]:
        """Return the user's tokens, revoked ones included, oldest first."""
        with self._read() as s:
            rows = s.execute(
                select(TokenRow.id, TokenRow.user_id, TokenRow.created, TokenRevocationRow.revoked)
                .outerjoin(TokenRevocationRow, TokenRevocationRow.token_id == TokenRow.id)
                .where(TokenRow.user_id == user_id)
                .order_by(TokenRow.id)
            ).all()
            return [TokenInfo(int(i), int(u), float(c), r) for i, u, c, r in rows]

    def revoke_token(self, token_id: int) -> TokenInfo | None:
        """Revoke a token and end the sessions created from it; None if no such token.

        Revoking an already revoked token changes nothing (its first time is kept).
        """
        with self._write() as s:
            row = s.get(TokenRow, token_id)
            if row is None:
                return None
            mark = s.get(TokenRevocationRow, token_id)
            if mark is None:
                mark = TokenRevocationRow(token_id=token_id, revoked=time.time())
                s.add(mark)
            keys = select(SessionTokenRow.session_key).where(SessionTokenRow.token_id == token_id)
            s.execute(delete(SessionRow).where(SessionRow.key.in_(keys)))
            return TokenInfo(int(row.id), int(row.user_id), float(row.created), mark.revoked)

    # ---- sessions ----------------------------------------------------------------
    def create_session(
        self,
        key: str,
        csrf: str,
        user_id: int | None,
        token_id: int | None = None,
        *,
        password_hash: str | None = None,
    ) -> bool:
        """Create a session with the hashed id ``key``; False if its user may not have one.

        ``token_id`` names the bearer token the session was created from: revoking that
        token ends the session. A session of a user is only made while the user is
        enabled and, when ``password_hash`` is given (the hash the user's password was
        verified against), while that is still the user's hash, so a login racing a
        password change or disabling cannot outlive it.
        """
        now = time.time()
        with self._write() as s:
            if user_id is not None:
                row = s.get(UserRow, user_id, with_for_update=True)
                if row is None or row.disabled:
                    return False
                if password_hash is not None and row.password_hash != password_hash:
                    return False
            s.add(SessionRow(key=key, user_id=user_id, csrf=csrf, created=now, last_access=now))
            if token_id is not None:
                s.add(SessionTokenRow(session_key=key, token_id=token_id))
            return True

    def get_session(self, key: str, idle_timeout: float) -> SessionInfo | None:
        """Return the live session ``key`` and refresh its idle timer; None if expired.

        One statement reads the session, its user and whether the bearer token it was
        made from has been revoked (this runs on every cookie-authenticated request).
        """
        now = time.time()
        with self._rconn() as conn:
            found = conn.execute(_SESSION_QUERY, {"key": key}).first()
        if found is None:
            return None
        (_key, csrf, last_access, user_id, revoked, uid, name, trust, disabled, password_hash,
         failures, locked_until) = found  # fmt: skip
        if last_access + idle_timeout < now or revoked is not None:
            return None  # expired, or made from a token revoked since
        user = None
        if user_id is not None:
            if uid is None:
                return None
            user = UserInfo(
                int(uid), name, TrustLevel(trust), bool(disabled), password_hash,
                int(failures), float(locked_until),
            )  # fmt: skip
        if last_access + _TOUCH_INTERVAL < now:
            with self._wconn() as conn:
                conn.execute(
                    update(SessionRow.__table__)
                    .where(SessionRow.key == key)
                    .values(last_access=now)
                )
        return SessionInfo(key, csrf, user)

    def delete_session(self, key: str) -> None:
        """Forget a session."""
        with self._write() as s:
            s.execute(delete(SessionRow).where(SessionRow.key == key))
            s.execute(delete(SessionTokenRow).where(SessionTokenRow.session_key == key))

    def purge_sessions(self, idle_timeout: float) -> int:
        """Delete sessions idle for longer than ``idle_timeout``; return how many."""
        with self._write() as s:
            result = s.execute(
                delete(SessionRow).where(SessionRow.last_access < time.time() - idle_timeout)
            )
            s.execute(
                delete(SessionTokenRow).where(
                    SessionTokenRow.session_key.not_in(select(SessionRow.key))
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)
