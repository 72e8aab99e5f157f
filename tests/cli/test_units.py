"""Pure parts of the command-line tools: settings, the machine map, substitutions, errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest

from pyspalloc.cli.alloc import substitute
from pyspalloc.cli.errors import CLIError, describe_error
from pyspalloc.cli.machines import render_map
from pyspalloc.cli.settings import ServiceSettings
from pyspalloc.cli.views import age
from pyspalloc.client import JobDescription, SpallocHTTPError
from pyspalloc.exceptions import SpallocException, SpinnmanIOException


def test_settings_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    config.write_text("[pyspalloc]\nurl = http://file/\nusername = f\npassword = fp\n")
    monkeypatch.setenv("PYSPALLOC_CONFIG", str(config))
    assert ServiceSettings.resolve() == ServiceSettings("http://file/", "f", "fp")
    monkeypatch.setenv("SPALLOC_USER", "e")
    monkeypatch.setenv("SPALLOC_MACHINE", "spin5")
    resolved = ServiceSettings.resolve(password="op")
    assert (resolved.url, resolved.username, resolved.password) == ("http://file/", "e", "op")
    assert resolved.machine == "spin5"
    assert ServiceSettings.resolve(url="http://opt/").url == "http://opt/"


def test_settings_need_a_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYSPALLOC_CONFIG", str(tmp_path / "absent.ini"))
    with pytest.raises(click.UsageError, match="no service given"):
        ServiceSettings.resolve()
    bad = tmp_path / "bad.ini"
    bad.write_text("not an ini file\n")
    monkeypatch.setenv("PYSPALLOC_CONFIG", str(bad))
    with pytest.raises(click.ClickException, match="cannot read config file"):
        ServiceSettings.resolve()


class _Machine:
    name = "m"
    width, height = 4, 2
    tags = frozenset({"default"})
    dead_links: list[Any] = []

    def __init__(self, dead: list[tuple[int, int, int]]) -> None:
        self.dead_boards = [{"x": x, "y": y, "z": z} for x, y, z in dead]


def _cells(lines: list[str]) -> list[list[str]]:
    plain = [re.sub(r"\[[^\]]*\]", "", line)[4:] for line in lines[:-1]]
    return [[c for c in line if c != " "] for line in plain]


def test_map_places_every_board_once() -> None:
    machine = _Machine(dead=[(3, 1, 2)])
    boards: dict[tuple[int, int, int], Any] = {
        (x, y, z): {} for x in range(4) for y in range(2) for z in range(3)
    }
    boards[3, 1, 2] = None
    boards[0, 0, 0] = boards[0, 0, 1] = boards[0, 0, 2] = {"job-id": 7}
    boards[1, 1, 1] = {"job-id": 9}
    lines = render_map(machine, boards, {7: "A", 9: "B"})  # type: ignore[arg-type]
    cells = _cells(lines)
    assert len(cells) == 6 and all(len(row) == 4 for row in cells)
    flat = "".join("".join(row) for row in cells)
    assert sorted(flat) == sorted("AAAB" + "x" + "." * 19)
    # south (z = 0 of the bottom triad row) is printed last; the root board is in it
    assert "A" in cells[-1]


def test_map_neighbours_are_close() -> None:
    machine = _Machine(dead=[])
    boards: dict[tuple[int, int, int], Any] = {
        (x, y, z): {} for x in range(4) for y in range(2) for z in range(3)
    }
    boards[1, 0, 0] = {"job-id": 1}
    boards[1, 0, 1] = {"job-id": 2}  # north-east neighbour of (1, 0, 0)
    plain = [
        re.sub(r"\[[^\]]*\]", "", line) for line in render_map(machine, boards, {1: "A", 2: "B"})
    ]  # type: ignore[arg-type]
    row_a = next(i for i, line in enumerate(plain) if "A" in line)
    row_b = next(i for i, line in enumerate(plain) if "B" in line)
    assert row_a - row_b == 1
    assert plain[row_b].index("B") - plain[row_a].index("A") == 3


def test_substitute() -> None:
    view = JobDescription(
        id=5,
        url="http://x/jobs/5/",
        state="READY",
        machine="spin24",
        width=2,
        height=1,
        connections=[(0, 0, "10.0.0.1"), (8, 4, "10.0.0.9")],
    )
    line = substitute(
        "run {} {hostname} {id} {w}x{h} {width} {ethernet_ips} {other}", view, "/t/ips.csv"
    )
    assert line == "run 10.0.0.1 10.0.0.1 5 2x1 2 /t/ips.csv {other}"


def test_error_lines() -> None:
    refused = SpinnmanIOException("GET http://h/ failed: ... [Errno 111] Connection refused")
    error = describe_error(refused, "http://h/")
    assert isinstance(error, CLIError) and error.exit_code == 6
    assert error.message == "cannot reach the service http://h/: connection refused"
    login = describe_error(SpallocException("Unable to login: HTTP 401: bad\nmore"), "http://h/")
    assert login.message.startswith("login to http://h/ failed: wrong user name, password")
    other = describe_error(SpallocException("Unable to login: no CSRF token in the page"), "U")
    assert other.message == "login to U failed: Unable to login: no CSRF token in the page"
    missing = describe_error(SpallocHTTPError("GET", "http://h/", 404, "no such\njob"))
    assert (missing.message, missing.exit_code) == ("not found: no such job", 4)
    assert "\n" not in CLIError("two\nlines").message


def test_age() -> None:
    assert age(None) is None
    assert age("2000-01-01T00:00:00Z") is not None and age("2000-01-01T00:00:00Z").endswith("h")  # type: ignore[union-attr]
    assert age("garbage") is None


def test_parse_request() -> None:
    from pyspalloc.cli.alloc import Request, parse_request

    assert parse_request(()) == Request()
    assert parse_request((4,)) == Request(num_boards=4)
    assert parse_request((2, 3)) == Request(rectangle=(2, 3))
    assert parse_request((1, 2, 0)) == Request(triad=(1, 2, 0))
    assert parse_request((), ip="10.0.0.1") == Request(ip="10.0.0.1")
    at = parse_request((2, 1), physical=(0, 0, 3), max_dead_boards=1)
    assert at == Request(rectangle=(2, 1), physical=(0, 0, 3), max_dead_boards=1)
    assert parse_request((), triad=(0, 0, 0), rect_at=(1, 1)).rectangle == (1, 1)
    for bad in (
        {"numbers": (1, 2, 3, 4)},
        {"numbers": (1, 2, 3), "ip": "10.0.0.1"},
        {"numbers": (2, 2), "rect_at": (1, 1)},
        {"numbers": (0,)},
        {"numbers": (2,), "triad": (0, 0, 0)},
        {"numbers": (), "triad": (0, 0, 0), "ip": "10.0.0.1"},
        {"numbers": (2, 2), "max_dead_boards": 1},
    ):
        with pytest.raises(click.UsageError):
            parse_request(**bad)  # type: ignore[arg-type]
