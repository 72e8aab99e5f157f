"""Authentication: argon2 passwords, JSESSIONID sessions, CSRF, bearer tokens, Basic.

Session ids, CSRF tokens and bearer tokens are random URL-safe strings; the database
holds only the SHA-256 of session ids and bearer tokens, and argon2 hashes of passwords.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import HTTPConnection

from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.store import SessionInfo, Store, UserInfo

SESSION_COOKIE = "JSESSIONID"
CSRF_HEADER = "X-CSRF-TOKEN"
CSRF_PARAM = "_csrf"
REALM = "SpallocService"
UNSAFE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """Return the argon2 hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password`` against an argon2 hash (False for a missing hash)."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def digest(secret: str) -> str:
    """Return the SHA-256 hex digest under which a session id or token is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    """Return a fresh random URL-safe string."""
    return secrets.token_urlsafe(nbytes)


class NotAuthenticated(Exception):
    """The request carries no valid credentials (401, or 302 to the login page)."""


class CsrfFailure(Exception):
    """A state-changing request lacks the session's CSRF token (403)."""


class Forbidden(Exception):
    """The caller lacks the role needed (403 ``computer says no``)."""


@dataclass
class Caller:
    """Who is making a request, and how they proved it."""

    user: UserInfo
    method: str  # "session", "bearer" or "basic"
    session: SessionInfo | None


class LoginThrottle:
    """Counts failed logins per client address within a sliding window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, address: str) -> bool:
        """Whether ``address`` has failed too often recently."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return False
            while times and times[0] < now - self.window:
                times.popleft()
            if not times:
                del self._failures[address]
                return False
            return len(times) >= self.limit

    def failed(self, address: str) -> None:
        """Record a failed attempt from ``address``."""
        with self._lock:
            times = self._failures.setdefault(address, deque(maxlen=self.limit + 1))
            times.append(time.monotonic())


class Authenticator:
    """Checks credentials and manages sessions for the web layer.

    Parameters
    ----------
    store:
        The database of users, tokens and sessions.
    config:
        Session timeout, lockout and throttling settings.
    """

    def __init__(self, store: Store, config: ServiceConfig) -> None:
        self.store = store
        self.config = config
        self.throttle = LoginThrottle(config.max_ip_failures, config.ip_failure_window)

    # ---- credentials ----------------------------------------------------------------
    def check_password(self, name: str, password: str, address: str) -> UserInfo | None:
        """Verify a local user's password with lockout and per-address throttling."""
        if self.throttle.blocked(address):
            return None
        user = self.store.get_user(name)
        if user is None:
            hash_password(password)  # spend the same time as a real check
            self.throttle.failed(address)
            return None
        if user.disabled or user.locked_until > time.time():
            self.throttle.failed(address)
            return None
        ok = verify_password(user.password_hash, password)
        if not ok or user.failures:
            self.store.record_login(
                user.id, ok, self.config.max_login_failures, self.config.account_lock_duration
            )
        if not ok:
            self.throttle.failed(address)
            return None
        return user

    def check_token(self, token: str) -> UserInfo | None:
        """Return the (enabled) owner of a bearer token."""
        user = self.store.user_for_token(digest(token))
        return None if user is None or user.disabled else user

    def issue_token(self, user: UserInfo) -> str:
        """Create and store a new bearer token for ``user``; return it (shown once)."""
        token = new_secret(32)
        self.store.add_token(user.id, digest(token))
        return token

    # ---- sessions -------------------------------------------------------------------
    def session_of(self, conn: HTTPConnection) -> SessionInfo | None:
        """Return the live session named by the request's JSESSIONID cookie."""
        session_id = conn.cookies.get(SESSION_COOKIE)
        if not session_id:
            return None
        session = self.store.get_session(digest(session_id), self.config.session_timeout)
        if session is not None and session.user is not None and session.user.disabled:
            return None
        return session

    def new_session(self, conn: HTTPConnection, user: UserInfo | None) -> SessionInfo:
        """Create a session, and arrange for the response to set its cookie."""
        session_id = new_secret(32)
        csrf = new_secret(24)
        key = digest(session_id)
        token_id = None if user is None else self._bearer_token_id(conn, user)
        self.store.create_session(key, csrf, None if user is None else user.id, token_id)
        conn.scope.setdefault("state", {})["set_session_cookie"] = session_id
        return SessionInfo(key, csrf, user)

    def _bearer_token_id(self, conn: HTTPConnection, user: UserInfo) -> int | None:
        """Return the id of the request's bearer token if it is a token of ``user``.

        A session created for such a request is bound to the token, so that revoking the
        token ends the session too (even if the revocation raced the session's creation,
        hence revoked tokens are looked up as well).
        """
        header = conn.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            return None
        found = self.store.token_for_hash(digest(value), revoked_too=True)
        if found is None or found[0].id != user.id:
            return None
        return found[1]

    def end_session(self, conn: HTTPConnection) -> None:
        """Delete the request's session, if any."""
        session_id = conn.cookies.get(SESSION_COOKIE)
        if session_id:
            self.store.delete_session(digest(session_id))

    # ---- per request -----------------------------------------------------------------
    def _header_user(self, conn: HTTPConnection) -> tuple[UserInfo | None, str | None]:
        header = conn.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return self.check_token(value), "bearer"
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None, "basic"
            name, sep, password = decoded.partition(":")
            if not sep:
                return None, "basic"
            address = conn.client.host if conn.client else "?"
            return self.check_password(name, password, address), "basic"
        return None, None

    def authenticate(self, conn: HTTPConnection, method: str = "GET") -> Caller:
        """Identify the caller of a request, enforcing CSRF on state-changing methods.

        Raises
        ------
        CsrfFailure
            A POST/PUT/DELETE/PATCH that is not bearer-authenticated lacks the session's
            token in ``X-CSRF-TOKEN``.
        NotAuthenticated
            No valid session, token or Basic credentials.
        """
        header = conn.headers.get("authorization", "")
        is_bearer = header[:7].lower() == "bearer "
        session = self.session_of(conn)
        if method.upper() in UNSAFE_METHODS and not is_bearer:
            token = conn.headers.get(CSRF_HEADER)
            if session is None or not token or not secrets.compare_digest(token, session.csrf):
                raise CsrfFailure()
        if is_bearer or header[:6].lower() == "basic ":
            user, how = self._header_user(conn)
            if user is not None and how is not None:
                if session is not None and session.user is not None and session.user.id != user.id:
                    session = None
                return Caller(user, how, session)
            if is_bearer:  # a bad token never falls back to the cookie (it skipped CSRF)
                raise NotAuthenticated()
        if session is not None and session.user is not None:
            return Caller(session.user, "session", session)
        raise NotAuthenticated()

    def ensure_session(self, conn: HTTPConnection, caller: Caller) -> SessionInfo:
        """Return the caller's session, creating one bound to the caller if needed."""
        if caller.session is not None and caller.session.user is not None:
            return caller.session
        session = self.new_session(conn, caller.user)
        caller.session = session
        return session
