"""Machine definitions as the Java loader reads them: its own test files, IPs, top level."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.geometry import (
    Direction,
    MachineDefinitionError,
    Physical,
    Triad,
    builtin_machine,
    dump_machine_definitions,
    load_machine_definitions,
    parse_machine_definitions,
)

JAVA = Path("/work/shared/peer-data/java-machine-definitions")
needs_files = pytest.mark.skipif(not JAVA.is_dir(), reason="peer data not present")


@needs_files
def test_single_board_example_loads_as_java_expects() -> None:
    (m,) = load_machine_definitions(JAVA / "single-board-example.json")
    assert m.name == "my-board" and m.tags == ("single",)
    assert list(m.boards) == [Triad(0, 0, 0)]
    assert m.boards[Triad(0, 0, 0)].physical == Physical(0, 0, 0)
    assert m.boards[Triad(0, 0, 0)].ip == "192.168.0.3"
    assert m.bmp_ips == {(0, 0): "192.168.0.2"}
    assert m.functioning_boards == {Triad(0, 0, 0)}
    assert m.live_links() == []  # single-board setups have no inter-board links


@needs_files
def test_three_board_example_has_one_bmp_three_boards_nine_live_links() -> None:
    (m,) = load_machine_definitions(JAVA / "three-board-example.json")
    assert m.name == "SpiNNaker3board" and set(m.tags) == {"machine-room", "default"}
    assert len(m.bmp_ips) == 1 and len(m.frames) == 1
    assert len(m.functioning_boards) == 3
    links = m.live_links()
    assert len(links) == 9
    # every live link joins two different boards of the triad (1x1 torus)
    assert all(a != b for a, _, b in links)
    assert m.boards[Triad(0, 0, 1)].physical == Physical(0, 0, 2)


@needs_files
def test_bad_example_is_refused_naming_the_field() -> None:
    with pytest.raises(MachineDefinitionError) as info:
        load_machine_definitions(JAVA / "bad-board-example.json")
    assert info.value.field == "ip"
    assert "'1.2.3.4.5.not-an-ip' is a bad IPv4 address" in str(info.value)


def _machine() -> dict[str, Any]:
    return copy.deepcopy(dump_machine_definitions([builtin_machine("spin24")]))


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        ("spinnaker-ips", "10.0.0.256"),
        ("spinnaker-ips", "board-1.example"),
        ("bmp-ips", "1.2.3"),
        ("bmp-ips", ""),
    ],
)
def test_board_and_bmp_addresses_must_be_ipv4(where: str, bad: str) -> None:
    obj = _machine()
    section = obj["machines"][0][where]
    section[next(iter(section))] = bad
    with pytest.raises(MachineDefinitionError, match="is a bad IPv4 address") as info:
        parse_machine_definitions(obj)
    assert where in info.value.field and repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("colour", "blue", "unknown top-level key"),
        ("port", 70000, "out of range"),
        ("port", "eighty", "expected an integer"),
        ("timeout-check-interval", 0, "positive number"),
        ("max-retired-jobs", -1, "out of range"),
        ("ip", "localhost", "bad IPv4 address"),
    ],
)
def test_top_level_keys_are_checked(key: str, value: Any, message: str) -> None:
    obj = _machine()
    obj[key] = value
    with pytest.raises(MachineDefinitionError, match=message) as info:
        parse_machine_definitions(obj)
    assert info.value.field == key


def test_dump_uses_java_link_names_and_loads_back(tmp_path: Path) -> None:
    obj = _machine()
    obj["machines"][0]["dead-links"] = {
        "[x:0,y:0,z:0]": ["north_east", "south-west"],
        "[x:1,y:1,z:2]": ["east", "west", "northEast", "south"],
    }
    (m,) = parse_machine_definitions(obj)
    dumped = dump_machine_definitions([m])
    links = dumped["machines"][0]["dead-links"]
    assert links == {
        "[x:0,y:0,z:0]": ["northEast", "southWest"],
        "[x:1,y:1,z:2]": ["east", "northEast", "west", "south"],
    }
    java_names = {"east", "northEast", "north", "west", "southWest", "south"}
    assert {name for names in links.values() for name in names} <= java_names
    assert dumped["ip"] == "0.0.0.0"
    path = tmp_path / "m.json"
    path.write_text(json.dumps(dumped))
    (back,) = load_machine_definitions(path)
    assert back == m
    assert (Triad(0, 0, 0), Direction.SOUTH_WEST) in back.dead_links
