"""Machine definitions: built-in shapes, lookups, JSON load/dump and validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.geometry import (
    BUILTIN_MACHINES,
    Chip,
    Direction,
    MachineDefinitionError,
    Physical,
    Triad,
    builtin_machine,
    dump_machine_definitions,
    load_machine_definitions,
    machine_from_spec,
    parse_machine_definitions,
)


def three_board() -> dict[str, Any]:
    return {
        "machines": [
            {
                "name": "my-board",
                "tags": ["default", "x"],
                "width": 1,
                "height": 1,
                "dead-boards": [],
                "dead-links": {},
                "board-locations": {
                    "[x:0,y:0,z:0]": {"c": 1, "f": 1, "b": 0},
                    "[x:0,y:0,z:1]": {"c": 1, "f": 1, "b": 2},
                    "[x:0,y:0,z:2]": {"c": 1, "f": 1, "b": 1},
                },
                "bmp-ips": {"[c:1,f:1]": "10.11.193.0"},
                "spinnaker-ips": {
                    "[x:0,y:0,z:0]": "10.11.193.1",
                    "[x:0,y:0,z:1]": "10.11.193.17",
                    "[x:0,y:0,z:2]": "10.11.193.9",
                },
            }
        ],
        "port": 22244,
        "seconds-before-free": 30,
    }


def test_builtin_counts_and_ips() -> None:
    assert BUILTIN_MACHINES == ("spin5", "spin24", "spinnaker1m")
    spin5 = builtin_machine("spin5")
    assert (spin5.width, spin5.height, spin5.depth, len(spin5.boards)) == (1, 1, 1, 1)
    assert spin5.boards[Triad(0, 0, 0)].ip == "127.1.0.1"
    assert spin5.bmp_ips == {(0, 0): "127.1.0.0"}
    assert spin5.dead_boards == {Triad(0, 0, 1), Triad(0, 0, 2)}
    assert (spin5.chip_width, spin5.chip_height) == (8, 8)

    spin24 = builtin_machine("spin24", "10.0.0.0")
    assert (spin24.width, spin24.height, spin24.depth, len(spin24.boards)) == (4, 2, 3, 24)
    assert spin24.boards[Triad(0, 0, 2)].physical == Physical(0, 0, 2)
    assert spin24.boards[Triad(1, 0, 0)].physical == Physical(0, 0, 3)
    assert spin24.boards[Triad(0, 1, 0)].physical == Physical(0, 0, 12)
    assert spin24.boards[Triad(3, 1, 2)].ip == "10.0.0.185"
    assert spin24.dead_boards == frozenset()
    assert spin24.tags == ("default",)

    big = builtin_machine("SpiNNaker1M")
    assert (big.width, big.height, len(big.boards), big.name) == (20, 20, 1200, "spinnaker1m")
    assert len(big.frames) == 50 and len(big.bmp_ips) == 50
    assert all(len(f.boards) == 24 for f in big.frames.values())
    assert big.boards[Triad(0, 2, 0)].physical == Physical(1, 0, 0)
    assert big.boards[Triad(19, 19, 2)].physical == Physical(9, 4, 23)
    assert big.boards[Triad(19, 19, 2)].ip == "127.1.49.185"
    assert big.boards[Triad(19, 19, 2)].bmp_ip == "127.1.49.0"
    assert len({b.ip for b in big.boards.values()}) == 1200
    assert (big.chip_width, big.max_chip_x) == (240, 239)
    with pytest.raises(ValueError):
        builtin_machine("spin7")


def test_lookups() -> None:
    m = builtin_machine("spinnaker1m")
    board = m.boards[Triad(8, 6, 0)]
    assert m.board_at_chip(Chip(100, 77)) == board
    assert m.board_at_chip(Chip(100 + 240, 77 - 240)) == board
    assert m.board_at_ip(board.ip) == board
    assert m.board_at_physical(board.physical) == board
    assert m.board_at_ip("1.2.3.4") is None
    assert m.board_at_physical(Physical(10, 0, 0)) is None
    spin5 = builtin_machine("spin5")
    assert spin5.board_at_chip(Chip(4, 7)) is not None
    assert spin5.board_at_chip(Chip(7, 0)) is None
    assert spin5.board_at_chip(Chip(9, 0)) is None
    frame = builtin_machine("spin24").frames[(0, 0)]
    assert frame.bmp_ip == "127.1.0.0" and [b.physical.board for b in frame.boards] == list(
        range(24)
    )


def test_three_board_example() -> None:
    (m,) = parse_machine_definitions(three_board())
    assert m.name == "my-board" and m.tags == ("default", "x")
    assert m.boards[Triad(0, 0, 1)].ip == "10.11.193.17"
    assert m.boards[Triad(0, 0, 1)].bmp_ip == "10.11.193.0"
    assert m.dead_boards == frozenset() and m.depth == 3
    # On a 1x1 torus every link of a 3-board machine joins the triad to itself.
    assert all(m.live_link(t, d) for t in m.boards for d in Direction)


def test_round_trip_with_dead_boards_and_links(tmp_path: Path) -> None:
    obj = json.loads(json.dumps(dump_machine_definitions([builtin_machine("spin24")])))
    machine = obj["machines"][0]
    machine["dead-boards"] = [{"x": 1, "y": 0, "z": 1}, [2, 1, 0]]
    del machine["board-locations"]["[x:2,y:1,z:0]"]
    del machine["spinnaker-ips"]["[x:2,y:1,z:0]"]
    machine["dead-links"] = {"[x:0,y:0,z:0]": ["north", "south_west"], "[3,1,2]": ["east"]}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(obj))
    (m,) = load_machine_definitions(path)
    assert m.dead_boards == {Triad(1, 0, 1), Triad(2, 1, 0)}
    assert not m.boards[Triad(1, 0, 1)].functioning
    assert Triad(2, 1, 0) not in m.boards
    assert m.dead_links == {
        (Triad(0, 0, 0), Direction.NORTH),
        (Triad(0, 0, 0), Direction.SOUTH_WEST),
        (Triad(3, 1, 2), Direction.EAST),
    }
    assert not m.live_link(Triad(0, 0, 0), Direction.NORTH)
    assert not m.live_link(Triad(0, 0, 2), Direction.SOUTH)  # the other end
    assert m.live_link(Triad(0, 0, 0), Direction.NORTH_EAST)
    assert not m.live_link(Triad(1, 0, 0), Direction.NORTH_EAST)  # to dead (1,0,1)
    dumped = dump_machine_definitions([m])
    assert parse_machine_definitions(json.loads(json.dumps(dumped))) == [m]
    assert dumped["machines"][0]["dead-links"]["[x:0,y:0,z:0]"] == ["north", "southWest"]


def test_alternative_key_forms() -> None:
    obj = three_board()
    machine = obj["machines"][0]
    machine["board-locations"] = {
        "[0,0,0]": {"cabinet": 1, "frame": 1, "board": 0},
        '{"x":0,"y":0,"z":1}': [1, 1, 2],
        "[x:0,y:0,z:2]": "[c:1,f:1,b:1]",
    }
    (m,) = parse_machine_definitions(obj)
    assert m.boards[Triad(0, 0, 1)].physical == Physical(1, 1, 2)
    assert m.boards[Triad(0, 0, 2)].physical == Physical(1, 1, 1)


def _broken(mutate: Any) -> str:
    obj = copy.deepcopy(three_board())
    mutate(obj["machines"][0])
    with pytest.raises(MachineDefinitionError) as info:
        parse_machine_definitions(obj)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_validation_errors() -> None:
    def dup_ip(m: dict[str, Any]) -> None:
        m["spinnaker-ips"]["[x:0,y:0,z:1]"] = "10.11.193.1"

    assert "spinnaker-ips" in _broken(dup_ip)

    def out_of_bounds(m: dict[str, Any]) -> None:
        m["board-locations"]["[x:1,y:0,z:0]"] = {"c": 1, "f": 1, "b": 5}

    assert "board-locations" in _broken(out_of_bounds)

    def same_slot(m: dict[str, Any]) -> None:
        m["board-locations"]["[x:0,y:0,z:1]"] = {"c": 1, "f": 1, "b": 0}

    assert "physical slot" in _broken(same_slot)

    def bad_name(m: dict[str, Any]) -> None:
        m["name"] = "my board"

    assert "name" in _broken(bad_name)

    def bad_tag(m: dict[str, Any]) -> None:
        m["tags"] = ["a{b}"]

    assert "tags" in _broken(bad_tag)

    def bad_link(m: dict[str, Any]) -> None:
        m["dead-links"] = {"[x:0,y:0,z:0]": ["up"]}

    assert "dead-links" in _broken(bad_link)

    def no_bmp(m: dict[str, Any]) -> None:
        m["bmp-ips"] = {}

    assert "bmp-ips" in _broken(no_bmp)

    def no_ip(m: dict[str, Any]) -> None:
        del m["spinnaker-ips"]["[x:0,y:0,z:2]"]

    assert "spinnaker-ips" in _broken(no_ip)

    def bad_coords(m: dict[str, Any]) -> None:
        m["board-locations"]["[x:0,y:zero,z:0]"] = {"c": 1, "f": 1, "b": 9}

    assert "board-locations" in _broken(bad_coords)

    def bad_width(m: dict[str, Any]) -> None:
        m["width"] = 0

    assert "width" in _broken(bad_width)


def test_duplicate_machine_names() -> None:
    obj = three_board()
    obj["machines"].append(copy.deepcopy(obj["machines"][0]))
    with pytest.raises(MachineDefinitionError, match="duplicate"):
        parse_machine_definitions(obj)


def test_machine_from_spec(tmp_path: Path) -> None:
    assert machine_from_spec("virtual:spin24")[0].name == "spin24"
    assert len(machine_from_spec("spin5", "10.2.0.0")[0].boards) == 1
    path = tmp_path / "three.json"
    path.write_text(json.dumps(three_board()))
    assert machine_from_spec(str(path))[0].name == "my-board"
    with pytest.raises(ValueError):
        machine_from_spec("virtual:nowhere")
    path.write_text("{not json")
    with pytest.raises(MachineDefinitionError):
        load_machine_definitions(path)


def test_machine_spec_with_an_address_base(tmp_path: Path) -> None:
    from pyspalloc.geometry import MachineSpec, parse_machine_spec

    spec = parse_machine_spec("virtual:spin24@127.5.0.0")
    assert spec == MachineSpec(True, "spin24", "127.5.0.0") and spec.builtin
    assert str(spec) == "virtual:spin24@127.5.0.0"
    assert str(parse_machine_spec("spin5").at("10.0.0.0")) == "spin5@10.0.0.0"
    (machine,) = machine_from_spec("virtual:spin24@127.5.0.0", "127.1.0.0")  # @ wins
    assert machine.boards[next(iter(machine.boards))].ip == "127.5.0.1"
    assert machine.frames[0, 0].bmp_ip == "127.5.0.0"
    with pytest.raises(ValueError, match="IPv4"):
        parse_machine_spec("spin24@nowhere")
    odd = tmp_path / "a@b.json"  # an @ in a file name is part of the name
    odd.write_text(json.dumps(three_board()))
    assert parse_machine_spec(f"virtual:{odd}") == MachineSpec(True, str(odd))
    assert machine_from_spec(f"virtual:{odd}")[0].name == "my-board"
