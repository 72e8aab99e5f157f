"""Users, groups, bearer tokens and HTTP sessions."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select, update

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.models import (
    GroupRow,
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
                group = GroupRow(name=name, quota=None)
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
    ) -> UserInfo | None:
        """Change a user's password hash, disabled flag or trust; None if no such user."""
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
            return _user(row)

    def record_login(self, user_id: int, ok: bool, max_failures: int, lock_for: float) -> None:
        """Count a failed login (locking at ``max_failures``) or reset on success."""
        with self._write() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                return
            if ok:
                row.failures = 0
                return
            row.failures += 1
            if row.failures >= max_failures:
                row.locked_until = time.time() + lock_for
                row.failures = 0

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

    def credential_still_valid(
        self,
        user_id: int,
        min_trust: TrustLevel,
        *,
        session_key: str | None = None,
        token_hash: str | None = None,
        password_hash: str | None = None,
    ) -> bool:
        """Whether a credential accepted earlier still admits its user (cheap: no hashing).

        The user must exist, be enabled and have at least ``min_trust``; and the session
        ``session_key`` must still exist (not logged out, not ended by a password change
        or a revoked token), the bearer token ``token_hash`` be unrevoked and the user's,
        or the password hash still be ``password_hash`` (Basic credentials).
        """
        with self._rconn() as conn:
            user = conn.execute(
                select(UserRow.trust, UserRow.disabled, UserRow.password_hash).where(
                    UserRow.id == user_id
                )
            ).first()
            if user is None or bool(user[1]) or TrustLevel(user[0]) < min_trust:
                return False
            if session_key is not None:
                found = conn.execute(
                    select(SessionRow.user_id, TokenRevocationRow.token_id)
                    .select_from(SessionRow)
                    .outerjoin(SessionTokenRow, SessionTokenRow.session_key == SessionRow.key)
                    .outerjoin(
                        TokenRevocationRow,
                        TokenRevocationRow.token_id == SessionTokenRow.token_id,
                    )
                    .where(SessionRow.key == session_key)
                ).first()
                if found is None or found[0] != user_id or found[1] is not None:
                    return False
            if token_hash is not None:
                owner = conn.execute(
                    select(TokenRow.user_id)
                    .outerjoin(TokenRevocationRow, TokenRevocationRow.token_id == TokenRow.id)
                    .where(TokenRow.token_hash == token_hash)
                    .where(TokenRevocationRow.token_id.is_(None))
                ).first()
                if owner is None or owner[0] != user_id:
                    return False
            return password_hash is None or user[2] == password_hash

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
        self, key: str, csrf: str, user_id: int | None, token_id: int | None = None
    ) -> None:
        """Create a session with the hashed id ``key``.

        ``token_id`` names the bearer token the session was created from: revoking that
        token ends the session.
        """
        now = time.time()
        with self._write() as s:
            s.add(SessionRow(key=key, user_id=user_id, csrf=csrf, created=now, last_access=now))
            if token_id is not None:
                s.add(SessionTokenRow(session_key=key, token_id=token_id))

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
