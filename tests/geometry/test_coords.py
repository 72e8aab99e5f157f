"""Coordinates, directions, chip <-> board mapping."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyspalloc.geometry import (
    BOARD_CHIP_SET,
    BOARD_CHIPS,
    BOARD_LINK_CHIP_DELTAS,
    CHIP_LINK_DELTAS,
    FPGA_BANK_STRIDE,
    FPGA_FLAG_REGISTER,
    FPGA_STOP_REGISTER,
    Chip,
    Direction,
    Triad,
    allocation_chip_size,
    board_chip_to_machine,
    builtin_machine,
    chip_to_board,
    ethernet_chip,
    fpga_for,
    fpga_stop_address,
    job_chip_to_machine,
    machine_chip_to_job,
    neighbour,
)


def test_board_has_48_chips_in_rows() -> None:
    assert len(BOARD_CHIPS) == 48 == len(BOARD_CHIP_SET)
    per_column = Counter(c.x for c in BOARD_CHIPS)
    assert [per_column[x] for x in range(8)] == [4, 5, 6, 7, 8, 7, 6, 5]
    assert Chip(0, 0) in BOARD_CHIP_SET and Chip(7, 7) in BOARD_CHIP_SET
    assert Chip(5, 0) not in BOARD_CHIP_SET and Chip(0, 4) not in BOARD_CHIP_SET


def test_worked_examples() -> None:
    assert chip_to_board(Chip(100, 77), 20, 20) == (Triad(8, 6, 0), Chip(4, 5))
    assert ethernet_chip(Triad(3, 4, 1)) == Chip(44, 52)
    assert ethernet_chip(Triad(0, 0, 2)) == Chip(4, 8)
    # job of 3x1 triads rooted at (2,0): job chip (13,5) -> machine chip (37,5)
    assert chip_to_board(Chip(37, 5), 20, 20) == (Triad(2, 0, 1), Chip(5, 1))


def test_every_chip_of_1m_maps_to_one_board_and_back() -> None:
    width = height = 20
    owners: Counter[Triad] = Counter()
    for x in range(12 * width):
        for y in range(12 * height):
            triad, local = chip_to_board(Chip(x, y), width, height)
            assert local in BOARD_CHIP_SET
            assert board_chip_to_machine(triad, local, width, height) == (x, y)
            owners[triad] += 1
    assert len(owners) == 1200
    assert set(owners.values()) == {48}


def test_ownership_is_nearest_hexagon_centre() -> None:
    roots = [(0, 0), (8, 4), (4, 8)]
    for x in range(12):
        for y in range(12):
            best = min(
                (
                    max(abs(dx), abs(dy), abs(dx - dy)),
                    z,
                )
                for z, (rx, ry) in enumerate(roots)
                for ox in (-12, 0, 12)
                for oy in (-12, 0, 12)
                for dx, dy in [(x - rx - ox - 3.6, y - ry - oy - 3.4)]
            )
            assert chip_to_board(Chip(x, y), 1, 1)[0].z == best[1]


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_chip_to_board_wraps(x: int, y: int) -> None:
    assert chip_to_board(Chip(x, y), 4, 2) == chip_to_board(Chip(x % 48, y % 24), 4, 2)


def test_directions() -> None:
    assert [d.java_name for d in Direction] == ["SE", "E", "N", "NW", "W", "S"]
    assert Direction.EAST.opposite is Direction.WEST
    assert Direction.NORTH_EAST.opposite is Direction.SOUTH_WEST
    assert Direction.SOUTH.opposite is Direction.NORTH
    for d in Direction:
        assert Direction.from_java_name(d.java_name) is d
        assert Direction.from_java_name(d.java_name.lower()) is d
        assert Direction.from_java_index(d.java_index) is d
        assert Direction.from_name(d.old_name) is d
        assert d.opposite.opposite is d
    assert Direction.from_name("southWest") is Direction.SOUTH_WEST
    assert Direction.from_name("NORTH-EAST") is Direction.NORTH_EAST
    assert Direction.NORTH.java_index == 0 and Direction.WEST.java_index == 5
    with pytest.raises(ValueError):
        Direction.from_java_name("NE")
    with pytest.raises(ValueError):
        Direction.from_name("up")
    assert CHIP_LINK_DELTAS == ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))


def test_fpga_mapping() -> None:
    assert fpga_for(Direction.EAST) == (0, 0)
    assert fpga_for(Direction.SOUTH) == (0, 1)
    assert fpga_for(Direction.SOUTH_WEST) == (1, 0)
    assert fpga_for(Direction.WEST) == (1, 1)
    assert fpga_for(Direction.NORTH) == (2, 0)
    assert fpga_for(Direction.NORTH_EAST) == (2, 1)
    assert (FPGA_STOP_REGISTER, FPGA_BANK_STRIDE, FPGA_FLAG_REGISTER) == (0x5C, 0x10000, 0x40004)
    assert fpga_stop_address(Direction.WEST) == (1, 0x1005C)
    assert len({fpga_for(d) for d in Direction}) == 6


def test_movement_table_rows() -> None:
    assert neighbour(Triad(0, 0, 0), Direction.NORTH, 4, 2) == Triad(0, 0, 2)
    assert neighbour(Triad(0, 0, 0), Direction.EAST, 4, 2) == Triad(0, 1, 2)  # wraps y
    assert neighbour(Triad(0, 0, 0), Direction.SOUTH, 4, 2) == Triad(3, 1, 1)
    assert neighbour(Triad(1, 1, 1), Direction.NORTH, 4, 2) == Triad(2, 0, 0)
    assert neighbour(Triad(1, 1, 2), Direction.NORTH_EAST, 4, 2) == Triad(2, 0, 0)
    assert neighbour(Triad(1, 1, 2), Direction.WEST, 4, 2) == Triad(1, 0, 0)


@pytest.mark.parametrize("shape", ["spin5", "spin24", "spinnaker1m"])
def test_neighbour_opposite_consistency(shape: str) -> None:
    machine = builtin_machine(shape)
    for triad in machine.all_triads():
        for d in Direction:
            other = neighbour(triad, d, machine.width, machine.height)
            assert neighbour(other, d.opposite, machine.width, machine.height) == triad


def test_neighbours_match_ethernet_chip_vectors() -> None:
    width, height = 20, 20
    for triad in builtin_machine("spinnaker1m").all_triads():
        here = ethernet_chip(triad)
        for d in Direction:
            there = ethernet_chip(neighbour(triad, d, width, height))
            dx, dy = BOARD_LINK_CHIP_DELTAS[d]
            assert ((here.x + dx) % 240, (here.y + dy) % 240) == there


def test_job_chips_and_sizes() -> None:
    root = Triad(2, 0, 0)
    machine_chip = job_chip_to_machine(root, Chip(13, 5), 20, 20)
    assert machine_chip == Chip(37, 5)
    assert machine_chip_to_job(root, machine_chip, 20, 20) == Chip(13, 5)
    assert machine_chip_to_job(Triad(19, 19, 0), Chip(4, 8), 20, 20) == Chip(16, 20)
    assert job_chip_to_machine(Triad(19, 19, 0), Chip(16, 20), 20, 20) == Chip(4, 8)
    assert allocation_chip_size(10, 10, 3, 20, 20) == (124, 124)
    assert allocation_chip_size(20, 10, 3, 20, 20) == (240, 124)
    assert allocation_chip_size(3, 1, 3, 20, 20) == (40, 16)
    assert allocation_chip_size(1, 1, 1, 20, 20) == (8, 8)
