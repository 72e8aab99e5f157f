"""Pure helpers of the client: URLs, credentials, durations, versions, states."""

from __future__ import annotations

import pytest

from pyspalloc.client.state import SpallocState
from pyspalloc.client.utils import (
    ServiceVersion,
    clean_url,
    is_server_address,
    iso_duration,
    join_url,
    parse_service_url,
    resolve_credentials,
)
from pyspalloc.exceptions import SpinnmanInvalidParameterException


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("http://host", True),
        ("https://spalloc.example.org/spalloc/", True),
        ("HTTPS://host:8080/x", True),
        ("https://u:p@h:8080/spalloc/", True),
        ("spalloc://host", False),
        ("ftp://host", False),
        ("host", False),
        ("10.0.0.1", False),
        ("", False),
        ("http://", False),
        ("http:/no-host", False),
    ],
)
def test_is_server_address(address: str, expected: bool) -> None:
    assert is_server_address(address) is expected


def test_is_server_address_additional_schemes() -> None:
    assert is_server_address("spalloc://host", {"spalloc"})
    assert is_server_address("SPALLOC://host", ["Spalloc"])
    assert not is_server_address("spalloc://", {"spalloc"})
    assert not is_server_address("tcp://host", {"spalloc"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:1/spalloc", "http://h:1/spalloc/"),
        ("http://h:1/spalloc/", "http://h:1/spalloc/"),
        ("https://h//spalloc//srv///jobs", "https://h/spalloc/srv/jobs/"),
        ("http://h", "http://h/"),
        ("http://h/jobs?deleted=true", "http://h/jobs/?deleted=true"),
    ],
)
def test_clean_url_keeps_scheme_and_ends_with_one_slash(url: str, expected: str) -> None:
    assert clean_url(url) == expected


@pytest.mark.parametrize(
    ("base", "segments", "expected"),
    [
        ("http://h/srv/spalloc/jobs", (12,), "http://h/srv/spalloc/jobs/12"),
        ("http://h/srv/spalloc/jobs/", ("12",), "http://h/srv/spalloc/jobs/12"),
        ("http://h/srv/spalloc/jobs/", ("/12/",), "http://h/srv/spalloc/jobs/12"),
        ("https://h/jobs/12/", ("machine",), "https://h/jobs/12/machine"),
        ("http://h/jobs/12", ("machine", "power"), "http://h/jobs/12/machine/power"),
        ("http://h/jobs/12/", (), "http://h/jobs/12/"),
    ],
)
def test_join_url_never_makes_double_slashes(
    base: str, segments: tuple[object, ...], expected: str
) -> None:
    joined = join_url(base, *segments)
    assert joined == expected
    assert "//" not in joined.split("://", 1)[1]


def test_parse_service_url_takes_out_credentials() -> None:
    location = parse_service_url("http://al%40ice:p%3Aw@127.0.0.1:8080/spalloc")
    assert location.url == "http://127.0.0.1:8080/spalloc/"
    assert location.username == "al@ice"
    assert location.password == "p:w"


def test_parse_service_url_without_credentials() -> None:
    location = parse_service_url("https://host/spalloc/")
    assert location == ("https://host/spalloc/", None, None)


def test_resolve_credentials_prefers_arguments_then_url_then_environment() -> None:
    env = {"SPALLOC_USER": "envuser", "SPALLOC_PASSWORD": "envpw"}
    assert resolve_credentials("http://h/s", "a", "b", None, env) == ("http://h/s/", "a", "b")
    assert resolve_credentials("http://u:p@h/s", None, None, None, env) == (
        "http://h/s/",
        "u",
        "p",
    )
    assert resolve_credentials("http://h/s", None, None, None, env) == (
        "http://h/s/",
        "envuser",
        "envpw",
    )


def test_resolve_credentials_bearer_token_ignores_environment() -> None:
    env = {"SPALLOC_USER": "envuser", "SPALLOC_PASSWORD": "envpw"}
    assert resolve_credentials("http://h/s", None, None, "tok", env) == ("http://h/s/", None, None)


def test_resolve_credentials_password_from_environment_for_explicit_user() -> None:
    env = {"SPALLOC_PASSWORD": "envpw"}
    assert resolve_credentials("http://h/", "bob", None, None, env) == ("http://h/", "bob", "envpw")


@pytest.mark.parametrize(
    ("url", "username", "password", "token"),
    [
        ("http://u:p@h/", "other", None, None),  # credentials twice
        ("http://h/", None, None, None),  # nothing at all
        ("http://h/", "bob", None, None),  # no password
    ],
)
def test_resolve_credentials_rejects(
    url: str, username: str | None, password: str | None, token: str | None
) -> None:
    with pytest.raises(SpinnmanInvalidParameterException):
        resolve_credentials(url, username, password, token, {})


@pytest.mark.parametrize(
    ("seconds", "text"), [(120, "PT120S"), (30.0, "PT30S"), (1.5, "PT1.5S"), (0, "PT0S")]
)
def test_iso_duration(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1, float("inf"), float("nan")])
def test_iso_duration_rejects(seconds: float) -> None:
    with pytest.raises(ValueError):
        iso_duration(seconds)


def test_service_version_parses_and_compares() -> None:
    version = ServiceVersion.from_json({"major-version": 7, "minor-version": 4, "revision": 2})
    assert version == (7, 4, 2)
    assert str(version) == "7.4.2"
    assert version > ServiceVersion(7, 3, 9)
    assert ServiceVersion.from_json({"major-version": "8"}) == (8, 0, 0)
    assert ServiceVersion.from_json(None) == (0, 0, 0)
    assert ServiceVersion.from_json({"major-version": "x"}) == (0, 0, 0)


def test_state_values_match_the_wire() -> None:
    assert [(s.name, int(s)) for s in SpallocState] == [
        ("UNKNOWN", 0),
        ("QUEUED", 1),
        ("POWER", 2),
        ("READY", 3),
        ("DESTROYED", 4),
    ]


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("READY", SpallocState.READY),
        ("destroyed", SpallocState.DESTROYED),
        (" QUEUED ", SpallocState.QUEUED),
        ("POWER", SpallocState.POWER),
        ("EXPLODED", SpallocState.UNKNOWN),
        (None, SpallocState.UNKNOWN),
        (3, SpallocState.UNKNOWN),
    ],
)
def test_state_from_name(name: object, state: SpallocState) -> None:
    assert SpallocState.from_name(name) is state
