"""URL and credential helpers for the Spalloc client (pure functions, no I/O)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pyspalloc.exceptions import SpinnmanInvalidParameterException

#: URL schemes that name a Spalloc service
_SERVER_SCHEMES = frozenset({"http", "https"})
_SLASHES = re.compile(r"/{2,}")


class ServiceVersion(NamedTuple):
    """The version of a Spalloc service, comparable as a tuple."""

    major: int
    minor: int
    revision: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}"

    @classmethod
    def from_json(cls, obj: object) -> ServiceVersion:
        """Read ``{"major-version": .., "minor-version": .., "revision": ..}``.

        Parameters
        ----------
        obj:
            The ``version`` member of the service description.

        Returns
        -------
        ServiceVersion
            The version; missing parts read as 0.
        """
        if not isinstance(obj, Mapping):
            return cls(0, 0, 0)

        def part(key: str) -> int:
            try:
                return int(obj.get(key, 0))
            except (TypeError, ValueError):
                return 0

        return cls(part("major-version"), part("minor-version"), part("revision"))


def is_server_address(address: str, additional_schemes: Iterable[str] = ()) -> bool:
    """Test if the given address is a likely Spalloc server URL.

    Parameters
    ----------
    address:
        The address to check.
    additional_schemes:
        More URL schemes to accept, typically ``{"spalloc"}``.

    Returns
    -------
    bool
        Whether the address has an accepted scheme (``http``, ``https`` or one of
        ``additional_schemes``) and a host.
    """
    try:
        parts = urlsplit(address)
        host = parts.hostname
    except ValueError:
        return False
    schemes = _SERVER_SCHEMES | {scheme.lower() for scheme in additional_schemes}
    return parts.scheme.lower() in schemes and bool(host)


def clean_url(url: str) -> str:
    """Normalise a URL's path: collapse ``//`` and end it with exactly one ``/``.

    The scheme, host, port, query and fragment are kept as given.

    Parameters
    ----------
    url:
        An absolute URL.

    Returns
    -------
    str
        The URL with a clean, slash-terminated path.
    """
    parts = urlsplit(url)
    path = _SLASHES.sub("/", parts.path)
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def join_url(base: str, *segments: object) -> str:
    """Append path segments to a base URL without ever producing ``//``.

    Parameters
    ----------
    base:
        The base URL; a missing trailing slash is added.
    segments:
        Path segments (converted with ``str``); slashes at their ends are stripped.

    Returns
    -------
    str
        The joined URL; no trailing slash is added after the last segment.
    """
    url = clean_url(base)
    parts = urlsplit(url)
    path = parts.path
    tail = "/".join(str(s).strip("/") for s in segments if str(s).strip("/"))
    return urlunsplit((parts.scheme, parts.netloc, path + tail, parts.query, parts.fragment))


class ServiceLocation(NamedTuple):
    """A service URL split into the URL proper and any credentials it carried."""

    url: str
    username: str | None
    password: str | None


def parse_service_url(url: str) -> ServiceLocation:
    """Take ``user:password@`` out of a service URL.

    Parameters
    ----------
    url:
        The service URL, possibly with credentials in its network location.

    Returns
    -------
    ServiceLocation
        The cleaned URL (credentials removed, path slash-terminated) and the
        (percent-decoded) user name and password, or ``None`` where absent.
    """
    parts = urlsplit(url)
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    netloc = parts.netloc.rpartition("@")[2]
    stripped = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return ServiceLocation(clean_url(stripped), username or None, password)


def resolve_credentials(
    url: str,
    username: str | None,
    password: str | None,
    bearer_token: str | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, str | None, str | None]:
    """Decide which credentials a client uses.

    Explicit arguments win, then credentials in the URL, then the environment
    variables ``SPALLOC_USER`` and ``SPALLOC_PASSWORD`` (only when no bearer token is
    given).

    Parameters
    ----------
    url:
        The service URL as the user gave it.
    username, password, bearer_token:
        The explicit credentials.
    environ:
        The environment to read; defaults to ``os.environ``.

    Returns
    -------
    tuple
        ``(clean_url, username, password)``.

    Raises
    ------
    SpinnmanInvalidParameterException
        If the URL carries credentials and explicit ones are given too, or if no way
        to log in is available.
    """
    location = parse_service_url(url)
    if location.username is not None:
        if username is not None or password is not None:
            raise SpinnmanInvalidParameterException(
                "service_url", location.url, "has credentials, but so do the arguments"
            )
        username, password = location.username, location.password
    env = os.environ if environ is None else environ
    if username is None and bearer_token is None:
        username = env.get("SPALLOC_USER") or None
    if password is None and username is not None and bearer_token is None:
        password = env.get("SPALLOC_PASSWORD")
    if username is not None and password is None and bearer_token is None:
        raise SpinnmanInvalidParameterException("password", None, f"needed for {username!r}")
    if username is None and bearer_token is None:
        raise SpinnmanInvalidParameterException(
            "username",
            None,
            "no credentials: give a username and password (arguments, URL or "
            "SPALLOC_USER/SPALLOC_PASSWORD) or a bearer token",
        )
    return location.url, username, password


def iso_duration(seconds: float) -> str:
    """Format a number of seconds as an ISO-8601 duration such as ``PT120S``.

    Parameters
    ----------
    seconds:
        A non-negative, finite number of seconds.

    Returns
    -------
    str
        The duration string.

    Raises
    ------
    ValueError
        If ``seconds`` is negative or not finite.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"bad duration: {seconds!r}")
    if float(seconds).is_integer():
        return f"PT{int(seconds)}S"
    return f"PT{seconds:.3f}".rstrip("0").rstrip(".") + "S"


def quote_segment(value: object) -> str:
    """Percent-encode one URL path segment.

    Parameters
    ----------
    value:
        The segment (converted with ``str``).

    Returns
    -------
    str
        The encoded segment; ``/`` is encoded too.
    """
    return quote(str(value), safe="")


def websocket_url(url: str, service_url: str) -> str:
    """Give a websocket URL the scheme it needs to reach the service.

    ``http``/``https`` become ``ws``/``wss``; a ``wss`` URL on the host of a plain-HTTP
    service becomes ``ws`` (the Java service always advertises ``wss``).

    Parameters
    ----------
    url:
        The websocket URL as the service gave it (e.g. a job's ``proxy-ref``).
    service_url:
        The service root URL.

    Returns
    -------
    str
        The URL to connect to.
    """
    scheme, sep, rest = url.partition("://")
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    service_scheme, _, service_rest = service_url.partition("://")
    same_host = rest.split("/", 1)[0] == service_rest.split("/", 1)[0]
    if scheme == "wss" and service_scheme.lower() == "http" and same_host:
        scheme = "ws"
    return f"{scheme}{sep}{rest}"
