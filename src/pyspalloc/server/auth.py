"""Authentication: argon2 passwords, JSESSIONID sessions, CSRF, bearer tokens, Basic.

Session ids, CSRF tokens and bearer tokens are random URL-safe strings; the database
holds only the SHA-256 of session ids and bearer tokens, and argon2 hashes of passwords.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.requests import HTTPConnection

from pyspalloc.server.audit import audit
from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.login_guard import (
    FLIGHT_STATE,
    AddressThrottle,
    Busy,
    FlightTicket,
    HashGate,
    VerifiedCache,
    basic_credentials,
    client_address,
)
from pyspalloc.server.store import SessionInfo, Store, TrustLevel, UserInfo

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
    """Who is making a request, and how they proved it.

    ``token_id`` is the bearer token's id when ``method`` is ``"bearer"``; for
    ``"basic"`` the proof is ``user.password_hash`` (the hash the password matched).
    """

    user: UserInfo
    method: str  # "session", "bearer" or "basic"
    session: SessionInfo | None
    token_id: int | None = None


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of a password check.

    ``reason`` is ``"ok"`` (hashed and right), ``"cached"`` (verified recently),
    ``"bad_password"``, ``"unknown_user"``, ``"disabled"``, ``"locked"`` or
    ``"throttled"`` (the address used up its attempts); ``hashed`` says whether the
    check took a hash's time (else a refusal is paced, see :func:`pace`).
    """

    user: UserInfo | None
    reason: str
    hashed: bool


_DELAY = "auth_delay"


async def pace(conn: HTTPConnection) -> None:
    """Delay a refusal that needed no hash about as long as a hash takes, so that
    locked, throttled and unknown accounts answer no faster than a wrong password (the
    wait is here, on the event loop, not in a worker thread)."""
    delay = conn.scope.get("state", {}).pop(_DELAY, 0.0)
    if delay:
        await asyncio.sleep(delay)


class Authenticator:
    """Checks credentials and manages sessions for the web layer.

    Parameters
    ----------
    store:
        The database of users, tokens and sessions.
    config:
        Session timeout, lockout, throttling and hashing limits.
    """

    def __init__(self, store: Store, config: ServiceConfig) -> None:
        self.store = store
        self.config = config
        self.throttle = AddressThrottle(config.max_ip_failures, config.ip_failure_window)
        self.gate = HashGate(config.hash_slots, config.hash_queue, config.hash_wait)
        self.verified = VerifiedCache(config.verified_ttl)

    # ---- credentials ----------------------------------------------------------------
    def address_of(self, conn: HTTPConnection) -> str:
        """The client's address (through trusted proxies), as limits and logs see it."""
        return client_address(conn, self.config.trusted_proxies)

    def new_password_hash(self, password: str) -> str:
        """Hash a new password in a hashing slot (:class:`Busy` when none comes free)."""
        return self.gate.run(lambda: hash_password(password))

    def check_password(
        self, name: str, password: str, address: str, flight: FlightTicket | None = None
    ) -> PasswordCheck:
        """Verify a local user's password, within the limits.

        The address's attempt and the account's attempt are counted before the hash, so
        concurrent attempts cannot get past either limit; credentials verified recently
        are not hashed again, and concurrent checks of the same credentials share one
        hash (``flight``: the share :class:`SharedBasicCheck` took for this request).
        Raises :class:`Busy` when no hashing slot comes free in time.
        """
        key = self.verified.key(name, password)
        ticket = flight if flight is not None and flight.key == key else None
        if ticket is not None and ticket.flight.done.is_set():  # checked already: reuse
            ticket = FlightTicket(key, ticket.flight, False)
        try:
            return self._check(name, password, address, key, ticket)
        finally:
            if ticket is not None and ticket.leading:  # whatever happened, it has landed
                self.verified.land(key, ticket.flight, "abandoned")

    def _check(
        self, name: str, password: str, address: str, key: bytes, ticket: FlightTicket | None
    ) -> PasswordCheck:
        if not self.throttle.take(address):
            return PasswordCheck(None, "throttled", False)
        counted = True
        try:
            user = self.store.get_user(name)
            if user is None or user.disabled or user.locked_until > time.time():
                why = "unknown_user" if user is None else "disabled" if user.disabled else "locked"
                return PasswordCheck(None, why, False)
            if self.verified.valid(key, user.id, user.password_hash):
                counted = False
                return PasswordCheck(user, "cached", False)
            for _ in range(2):  # a second round if the check we waited for was abandoned
                if ticket is None:
                    flight, leading = self.verified.join(key)
                    ticket = FlightTicket(key, flight, leading)
                if ticket.leading:
                    outcome = "busy"
                    try:
                        outcome = self._verify(user, password, key)
                    finally:
                        self.verified.land(key, ticket.flight, outcome)
                    hashed = True
                else:
                    outcome = ticket.flight.wait(self.config.hash_wait + 5.0)
                    hashed = False
                    ticket = None
                if outcome == "busy":
                    raise Busy()
                if outcome == "ok" and (
                    hashed or self.verified.valid(key, user.id, user.password_hash)
                ):
                    counted = False
                    return PasswordCheck(user, "ok" if hashed else "cached", True)
                if outcome not in ("ok", "abandoned"):  # else: of no use here, check again
                    return PasswordCheck(None, outcome, outcome != "locked" or hashed)
            raise Busy()
        except Busy:
            counted = False
            raise
        finally:
            if not counted:
                self.throttle.give_back(address)

    def _verify(self, user: UserInfo, password: str, key: bytes) -> str:
        """In a hashing slot, count the account's attempt, then hash; return the outcome."""
        config = self.config
        with self.gate.slot():
            if not self.store.reserve_login(
                user.id, config.max_login_failures, config.account_lock_duration
            ):
                return "locked"
            ok = self.gate.timed(lambda: verify_password(user.password_hash, password))
        if not ok or user.password_hash is None:
            return "bad_password"
        self.store.login_succeeded(user.id)
        self.verified.put(key, user.id, user.password_hash)
        return "ok"

    def login(self, conn: HTTPConnection, name: str, password: str, how: str) -> UserInfo | None:
        """Check a password given with a request (``how``: ``form`` or ``basic``).

        Writes the login or failure to the audit log (not a Basic credential taken from
        the cache, and only the first refusal of a throttled address in its window); a
        refusal that took no hash's time is paced by :func:`pace`.
        """
        address = self.address_of(conn)
        ticket = conn.scope.get("state", {}).get(FLIGHT_STATE)
        check = self.check_password(name, password, address, ticket)
        if check.user is None:
            if check.reason != "throttled" or self.throttle.first_refusal(address):
                audit("login_failed", user=name, address=address, method=how, reason=check.reason)
            if not check.hashed:
                conn.scope.setdefault("state", {})[_DELAY] = self.gate.typical()
        elif check.reason == "ok" or how != "basic":
            audit("login", user=name, address=address, method=how)
        return check.user

    def audit(
        self, conn: HTTPConnection, caller: Caller, event: str, **fields: str | float | None
    ) -> None:
        """Write an action of ``caller`` to the audit log, with the client's address."""
        audit(event, user=caller.user.name, address=self.address_of(conn), **fields)

    def check_token(self, token: str) -> UserInfo | None:
        """Return the (enabled) owner of a bearer token."""
        found = self._token(token)
        return None if found is None else found[0]

    def _token(self, token: str) -> tuple[UserInfo, int] | None:
        found = self.store.token_for_hash(digest(token))
        return None if found is None or found[0].disabled else found

    def issue_token(self, user: UserInfo) -> str:
        """Create and store a new bearer token for ``user``; return it (shown once)."""
        token = new_secret(32)
        self.store.add_token(user.id, digest(token))
        return token

    def caller_still_valid(self, caller: Caller, role: TrustLevel) -> bool:
        """Whether ``caller``, authenticated earlier, may go on with ``role``.

        For long-lived connections (the proxy websocket): False once the user is
        disabled or lost ``role``, or the credential used is gone: the session ended
        (logout, password change, disabling), the bearer token was revoked, or the
        password given (Basic) is no longer the user's.
        """
        session_key = None
        if caller.method == "session" and caller.session is not None:
            session_key = caller.session.key
        return self.store.credential_still_valid(
            caller.user.id,
            role,
            session_key=session_key,
            token_id=caller.token_id if caller.method == "bearer" else None,
            password_hash=caller.user.password_hash if caller.method == "basic" else None,
        )

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
        """Create a session, and arrange for the response to set its cookie.

        Raises
        ------
        NotAuthenticated
            ``user`` was disabled, or their password changed, since ``user`` was read.
        """
        session_id = new_secret(32)
        csrf = new_secret(24)
        key = digest(session_id)
        if user is None:
            self.store.create_session(key, csrf, None)
        elif not self.store.create_session(
            key, csrf, user.id, self._bearer_token_id(conn, user), password_hash=user.password_hash
        ):
            raise NotAuthenticated()  # disabled, or the password changed, meanwhile
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
    def _header_user(self, conn: HTTPConnection) -> tuple[UserInfo | None, str | None, int | None]:
        """The user of the Authorization header, how they proved it, and the token id."""
        header = conn.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            found = self._token(value)
            return (None, "bearer", None) if found is None else (found[0], "bearer", found[1])
        if scheme.lower() == "basic" and value:
            credentials = basic_credentials(header)
            if credentials is None:
                return None, "basic", None
            return self.login(conn, *credentials, "basic"), "basic", None
        return None, None, None

    def authenticate(self, conn: HTTPConnection, method: str = "GET") -> Caller:
        """Identify the caller of a request, enforcing CSRF on state-changing methods.

        Raises
        ------
        CsrfFailure
            A POST/PUT/DELETE/PATCH that is not bearer-authenticated lacks the session's
            token in ``X-CSRF-TOKEN``.
        NotAuthenticated
            No valid session, token or Basic credentials.
        Busy
            Basic credentials to check, but no hashing slot came free in time.
        """
        header = conn.headers.get("authorization", "")
        is_bearer = header[:7].lower() == "bearer "
        session = self.session_of(conn)
        if method.upper() in UNSAFE_METHODS and not is_bearer:
            token = conn.headers.get(CSRF_HEADER)
            if session is None or not token or not secrets.compare_digest(token, session.csrf):
                raise CsrfFailure()
        if is_bearer or header[:6].lower() == "basic ":
            user, how, token_id = self._header_user(conn)
            if user is not None and how is not None:
                if session is not None and session.user is not None and session.user.id != user.id:
                    session = None
                return Caller(user, how, session, token_id)
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
