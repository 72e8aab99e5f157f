"""HTTP session handling for the Spalloc client: login, CSRF, renewal, websockets.

Unlike spinnman's, this session really renews itself: a request answered 401 (or a
state-changing request answered 403, which is how a CSRF check fails once the server
has forgotten the session) triggers one fresh login, with the password or the bearer
token, and is then retried exactly once. Several threads may share one session.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, TypeAlias

import requests

from pyspalloc.client.utils import clean_url, parse_service_url, websocket_url
from pyspalloc.exceptions import (
    SpallocException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
)

if TYPE_CHECKING:
    from websocket import WebSocket

logger = logging.getLogger(__name__)

#: (cookies, headers): the serialisable form of a session's credentials
Credentials: TypeAlias = tuple[dict[str, str], dict[str, str]]

SESSION_COOKIE = "JSESSIONID"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_CSRF_INPUT = re.compile(r'<input[^>]*\bname="_csrf"[^>]*\bvalue="([^"]*)"')
_CSRF_META = re.compile(r'<meta[^>]*\bname="_csrf"[^>]*\bcontent="([^"]*)"')
_ACCEPT_API = "application/json, text/plain, */*"
_LOGIN_TIMEOUT = 10.0
_ROLE_REFUSAL = "computer says no"


class SpallocHTTPError(SpallocException, ValueError):
    """The service answered with an error status.

    It is a :class:`ValueError` too, as spinnman raised ``ValueError`` here.

    Parameters
    ----------
    method, url:
        The request.
    status:
        The HTTP status code.
    body:
        The (text) body of the response, possibly empty.
    """

    def __init__(self, method: str, url: str, status: int, body: str):
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        text = body.strip()[:500]
        super().__init__(f"Unexpected response from server {status} to {method} {url}: {text}")


class Session:
    """Manages the credentials of a connection to a Spalloc service.

    Parameters
    ----------
    service_url:
        The service root, e.g. ``https://host/spalloc/``. ``user:password@`` in it is
        used when ``username`` is not given.
    username, password:
        Credentials for the login form.
    token:
        A bearer token (used when no username is given).
    session_credentials:
        ``(cookies, headers)`` saved from another session (see :attr:`credentials`).
        Used as they are until the service rejects them.
    """

    def __init__(
        self,
        service_url: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        session_credentials: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
    ):
        location = parse_service_url(service_url)
        if username is None and location.username is not None:
            username, password = location.username, location.password
        self._service_url = location.url
        self._username = username
        self._password = password
        self._token = token
        self._cookies: dict[str, str] = {}
        self._extra_headers: dict[str, str] = {}
        self._csrf_header: str | None = None
        self._csrf_token: str | None = None
        self._lock = threading.RLock()
        self._generation = 0
        self._purged = False
        self._local = threading.local()
        self._clients: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        if session_credentials is not None:
            self._load(*session_credentials)

    def _load(self, cookies: Mapping[str, str], headers: Mapping[str, str]) -> None:
        self._cookies.update({str(k): str(v) for k, v in cookies.items()})
        for name, value in headers.items():
            if name.lower() == "authorization":
                scheme, _, rest = str(value).partition(" ")
                if scheme.lower() == "bearer" and self._token is None and rest:
                    self._token = rest.strip()
            elif "csrf" in name.lower():
                self._csrf_header, self._csrf_token = str(name), str(value)
            else:
                self._extra_headers[str(name)] = str(value)

    # ------------------------------------------------------------------ properties

    @property
    def service_url(self) -> str:
        """The service root URL (slash-terminated, without credentials)."""
        return self._service_url

    @property
    def srv_url(self) -> str:
        """The REST root, ``{service_url}srv/spalloc/``."""
        return self._service_url + "srv/spalloc/"

    @property
    def credentials(self) -> Credentials:
        """The credentials for requests, as ``(cookies, headers)``. Serialisable."""
        with self._lock:
            cookies = dict(self._cookies)
            headers = dict(self._extra_headers)
            if self._csrf_header and self._csrf_token is not None:
                headers[self._csrf_header] = self._csrf_token
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
        return cookies, headers

    @property
    def can_renew(self) -> bool:
        """Whether this session holds what it needs to log in again."""
        return not self._purged and (
            bool(self._token) or (self._username is not None and self._password is not None)
        )

    # ------------------------------------------------------------------ login

    def renew(self) -> dict[str, Any]:
        """Log in afresh (password or bearer token) and fetch a new CSRF token.

        Returns
        -------
        dict
            The service description (``GET {srv}``) without the CSRF data.

        Raises
        ------
        SpallocException
            If the session cannot be renewed.
        """
        with self._lock:
            self._check_usable()
            if self._username is not None and self._password is not None:
                self._login_with_password(self._username, self._password)
            elif self._token:
                self._login_with_token()
            else:
                raise SpallocException(
                    "cannot renew the session: no username and password or bearer token"
                )
            description = self._fetch_description()
            self._generation += 1
            logger.debug("session renewed with %s", self._service_url)
        return description

    def _login_with_password(self, username: str, password: str) -> None:
        self._cookies.pop(SESSION_COOKIE, None)
        self._csrf_header = self._csrf_token = None
        page = self._raw("GET", self._service_url + "system/login.html", {"Accept": "text/html"})
        if page.status_code != 200:
            raise SpallocException(f"Unable to fetch the login page: HTTP {page.status_code}")
        match = _CSRF_INPUT.search(page.text) or _CSRF_META.search(page.text)
        if match is None:
            raise SpallocException("Unable to login: no CSRF token in the login page")
        first_cookie = _session_cookie(page)
        headers = {"Accept": "text/html"}
        if first_cookie:
            headers["Cookie"] = f"{SESSION_COOKIE}={first_cookie}"
        form = {
            "_csrf": match.group(1),
            "username": username,
            "password": password,
            "submit": "Log In",
        }
        result = self._raw("POST", self._service_url + "system/perform_login", headers, data=form)
        location = result.headers.get("Location", "")
        if result.status_code >= 400 or "error" in location or "login" in location:
            raise SpallocException(f"Unable to login: {_error_text(result)}")
        cookie = _session_cookie(result) or first_cookie
        if not cookie:
            raise SpallocException("Unable to login: the service set no session cookie")
        self._cookies[SESSION_COOKIE] = cookie

    def _login_with_token(self) -> None:
        self._cookies.pop(SESSION_COOKIE, None)
        self._csrf_header = self._csrf_token = None
        headers = {"Accept": "text/html", "Authorization": f"Bearer {self._token}"}
        page = self._raw("GET", self._service_url + "system/login.html", headers)
        if not 200 <= page.status_code < 400:
            raise SpallocException(f"Unable to login with the bearer token: {_error_text(page)}")
        cookie = _session_cookie(page)
        if cookie:
            self._cookies[SESSION_COOKIE] = cookie

    def _fetch_description(self) -> dict[str, Any]:
        reply = self._raw("GET", self.srv_url, self._headers(write=False))
        if not 200 <= reply.status_code < 300:
            raise SpallocException(f"Unable to login: {_error_text(reply)}")
        try:
            description = reply.json()
        except ValueError as error:
            raise SpallocException(f"{self.srv_url} did not answer with JSON") from error
        if not isinstance(description, dict):
            raise SpallocException(f"{self.srv_url} did not answer with a JSON object")
        self._take_csrf(description)
        return {k: v for k, v in description.items() if k not in ("csrf-header", "csrf-token")}

    def _take_csrf(self, description: Mapping[str, Any]) -> None:
        token = description.get("csrf-token")
        if isinstance(token, str):
            header = description.get("csrf-header")
            self._csrf_header = header if isinstance(header, str) and header else "X-CSRF-TOKEN"
            self._csrf_token = token

    def _ensure_csrf(self) -> None:
        """Fetch a CSRF token for a session restored without one."""
        with self._lock:
            if self._csrf_token is not None:
                return
            generation = self._generation
        reply = self._request("GET", self.srv_url, timeout=_LOGIN_TIMEOUT)
        with self._lock:
            if self._generation == generation or self._csrf_token is None:
                try:
                    self._take_csrf(reply.json())
                except (ValueError, AttributeError):
                    logger.warning("%s gave no CSRF token", self.srv_url)

    def purge(self) -> None:
        """Forget all credentials; the session cannot be used afterwards."""
        with self._lock:
            self._purged = True
            self._cookies.clear()
            self._extra_headers.clear()
            self._csrf_header = self._csrf_token = None
            self._username = self._password = self._token = None
            clients = list(self._clients)
        for client in clients:
            client.close()

    def _check_usable(self) -> None:
        if self._purged:
            raise SpallocException("this session has been closed")

    # ------------------------------------------------------------------ requests

    def get(self, url: str, timeout: float = 10, **kwargs: Any) -> requests.Response:
        """Do an HTTP GET in the session (query parameters from ``kwargs``).

        Every request method returns the (2xx or 3xx) :class:`requests.Response` and
        raises :class:`SpallocHTTPError` (also a ``ValueError``) for any other status,
        after renewing the session once if the status says it was lost.
        """
        return self._request("GET", url, timeout=timeout, params=kwargs or None)

    def post(
        self, url: str, json_dict: dict[str, Any], timeout: float = 10, **kwargs: Any
    ) -> requests.Response:
        """Do an HTTP POST of a JSON object in the session (query from ``kwargs``)."""
        return self._request("POST", url, timeout=timeout, json=json_dict, params=kwargs or None)

    def post_raw(
        self, url: str, data: bytes, timeout: float = 10, **kwargs: Any
    ) -> requests.Response:
        """Do an HTTP POST of raw bytes (``application/octet-stream``) in the session."""
        headers = {"Content-Type": "application/octet-stream"}
        return self._request(
            "POST", url, timeout=timeout, data=bytes(data), headers=headers, params=kwargs or None
        )

    def put(self, url: str, data: str, timeout: float = 10, **kwargs: Any) -> requests.Response:
        """Do an HTTP PUT of plain text (or a JSON text) in the session."""
        stripped = data.lstrip()
        kind = "application/json" if stripped[:1] in ("{", "[") else "text/plain; charset=UTF-8"
        return self._request(
            "PUT",
            url,
            timeout=timeout,
            data=data.encode("utf-8"),
            headers={"Content-Type": kind},
            params=kwargs or None,
        )

    def delete(self, url: str, timeout: float = 10, **kwargs: Any) -> requests.Response:
        """Do an HTTP DELETE in the session (query parameters from ``kwargs``)."""
        return self._request("DELETE", url, timeout=timeout, params=kwargs or None)

    def _request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request; renew the session and retry once if it was rejected."""
        self._check_usable()
        write = method not in _SAFE_METHODS
        if write and self._csrf_token is None and self._cookies:
            self._ensure_csrf()
        for attempt in range(2):
            generation = self._generation
            all_headers = self._headers(write)
            all_headers.update(headers or {})
            response = self._raw(method, url, all_headers, timeout=timeout, **kwargs)
            self._adopt_cookie(response)
            if attempt == 0 and self._rejected(method, response) and self.can_renew:
                logger.info(
                    "%s %s got HTTP %s; renewing the session", method, url, response.status_code
                )
                self._renew_if_unchanged(generation)
                continue
            break
        if not 200 <= response.status_code < 400:
            raise SpallocHTTPError(method, url, response.status_code, _body_text(response))
        return response

    def _renew_if_unchanged(self, generation: int) -> None:
        with self._lock:
            if self._generation == generation:
                self.renew()

    @staticmethod
    def _rejected(method: str, response: requests.Response) -> bool:
        """Whether the response says the session (not the user's rights) is bad."""
        status = response.status_code
        if status == 401:
            return True
        if status == 403:
            return method not in _SAFE_METHODS and _body_text(response).strip() != _ROLE_REFUSAL
        if 300 <= status < 400:
            return "login" in response.headers.get("Location", "")
        return False

    def _headers(self, write: bool) -> dict[str, str]:
        with self._lock:
            headers = {"Accept": _ACCEPT_API, **self._extra_headers}
            if self._cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            if write and self._csrf_header and self._csrf_token is not None:
                headers[self._csrf_header] = self._csrf_token
        return headers

    def _adopt_cookie(self, response: requests.Response) -> None:
        cookie = _session_cookie(response)
        if cookie:
            with self._lock:
                self._cookies[SESSION_COOKIE] = cookie

    def _http(self) -> requests.Session:
        client: requests.Session | None = getattr(self._local, "client", None)
        if client is None:
            client = requests.Session()
            # cookies are managed by this class, never by requests
            client.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            self._local.client = client
            self._clients.add(client)
        return client

    def _raw(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        timeout: float = _LOGIN_TIMEOUT,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP exchange; network failures become spinnman exceptions."""
        self._check_usable()
        try:
            return self._http().request(
                method,
                url,
                headers=dict(headers),
                timeout=timeout,
                allow_redirects=False,
                **kwargs,
            )
        except requests.Timeout as error:
            raise SpinnmanTimeoutException(f"{method} {url}", timeout) from error
        except requests.RequestException as error:
            raise SpinnmanIOException(f"{method} {url} failed: {error}") from error

    # ------------------------------------------------------------------ websockets

    def websocket(
        self,
        url: str,
        header: dict[str, str] | None = None,
        cookie: str | None = None,
        **kwargs: Any,
    ) -> WebSocket:
        """Open a websocket that authenticates with this session's credentials.

        Parameters
        ----------
        url:
            Where to open the websocket (``ws``/``wss``; ``http``/``https`` are mapped).
            A ``wss`` URL for the service's own plain-HTTP host becomes ``ws``.
        header:
            More HTTP headers for the handshake.
        cookie:
            More cookies, as a ``;``-separated string.
        kwargs:
            Passed to :func:`websocket.create_connection`; ``timeout`` defaults to 10 s
            and applies to later socket operations too.

        Returns
        -------
        websocket.WebSocket
            The connected websocket.

        Raises
        ------
        SpinnmanIOException
            If the connection cannot be made.
        """
        import websocket as ws

        url = websocket_url(url, self._service_url)
        kwargs.setdefault("timeout", 10)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE")
        if (
            url.startswith("wss:")
            and "sslopt" not in kwargs
            and ca_bundle
            and not os.environ.get("WEBSOCKET_CLIENT_CA_BUNDLE")
        ):
            kwargs["sslopt"] = {"ca_certs": ca_bundle}
        for attempt in range(2):
            generation = self._generation
            headers = self._headers(write=True)
            headers.pop("Accept", None)
            cookies = headers.pop("Cookie", "")
            headers.update(header or {})
            all_cookies = "; ".join(c for c in (cookies, cookie or "") if c)
            try:
                return ws.create_connection(
                    url,
                    header=[f"{k}: {v}" for k, v in headers.items()],
                    cookie=all_cookies or None,
                    **kwargs,
                )
            except ws.WebSocketBadStatusException as error:
                status = getattr(error, "status_code", 0)
                if attempt == 0 and status in (401, 403) and self.can_renew:
                    self._renew_if_unchanged(generation)
                    continue
                raise SpinnmanIOException(f"websocket {url} refused: {error}") from error
            except (OSError, ws.WebSocketException) as error:
                raise SpinnmanIOException(f"websocket {url} failed: {error}") from error
        raise SpinnmanIOException(f"websocket {url} refused")  # pragma: no cover


class SessionAware:
    """Base for objects that talk to the service at a URL through a :class:`Session`.

    Parameters
    ----------
    session:
        The session to use.
    url:
        The object's URL (normalised to end in ``/``).
    """

    def __init__(self, session: Session, url: str):
        self._session = session
        self._url = clean_url(url)

    @property
    def _session_credentials(self) -> Credentials:
        return self._session.credentials

    @property
    def _service_url(self) -> str:
        return self._session.service_url


def _session_cookie(response: requests.Response) -> str | None:
    for cookie in response.cookies:
        if cookie.name == SESSION_COOKIE and cookie.value:
            return cookie.value
    return None


def _body_text(response: requests.Response) -> str:
    try:
        return response.text
    except (UnicodeDecodeError, LookupError):  # pragma: no cover - binary bodies
        return ""


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and "message" in body:
            return f"HTTP {response.status_code}: {body['message']}"
    except ValueError:
        pass
    return f"HTTP {response.status_code}: {_body_text(response).strip()[:200]}"
