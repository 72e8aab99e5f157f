"""The pure board allocator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyspalloc.geometry import (
    Chip,
    Direction,
    MachineDefinition,
    Triad,
    builtin_machine,
    dump_machine_definitions,
    neighbour,
    parse_machine_definitions,
)
from pyspalloc.server.allocator import (
    AllocationRequest,
    Allocator,
    RequestKind,
    classify,
    connections_for,
    describe,
    estimate_dimensions,
    perimeter_for,
)

SPIN24 = builtin_machine("spin24")
BIG = builtin_machine("spinnaker1m")


def with_dead(
    machine: MachineDefinition,
    dead: list[Triad],
    links: dict[str, list[str]] | None = None,
) -> MachineDefinition:
    obj: Any = json.loads(json.dumps(dump_machine_definitions([machine])))
    obj["machines"][0]["dead-boards"] = [list(t) for t in dead]
    obj["machines"][0]["dead-links"] = links or {}
    return parse_machine_definitions(obj)[0]


def test_request_validation_and_classification() -> None:
    assert classify(AllocationRequest()) is RequestKind.SINGLE
    assert classify(AllocationRequest(num_boards=1)) is RequestKind.SINGLE
    assert classify(AllocationRequest(num_boards=2)) is RequestKind.NUM_BOARDS
    assert classify(AllocationRequest(width=1, height=1)) is RequestKind.RECTANGLE
    assert classify(AllocationRequest(width=1, height=1, max_dead_boards=2)) is RequestKind.SINGLE
    assert classify(AllocationRequest(board=Triad(1, 0, 2))) is RequestKind.BOARD
    rect_at = AllocationRequest(width=2, height=1, board=Triad(1, 0, 0))
    assert classify(rect_at) is RequestKind.RECTANGLE_AT_BOARD
    assert describe(rect_at) == "2x1 triads at board (1, 0, 0)"
    assert describe(AllocationRequest(num_boards=7, max_dead_boards=1)) == "7 boards (up to 1 dead)"
    for bad in (
        {"width": 2},
        {"num_boards": 2, "width": 1, "height": 1},
        {"num_boards": 2, "board": Triad(0, 0, 0)},
        {"num_boards": 0},
        {"max_dead_boards": -1},
    ):
        with pytest.raises(ValueError):
            AllocationRequest(**bad)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (2, (1, 1, 1)),
        (4, (2, 1, 2)),
        (7, (2, 2, 5)),
        (13, (3, 2, 5)),
        (24, (3, 3, 3)),
        (48, (4, 4, 0)),
        (100, (6, 6, 8)),
        (120, (7, 6, 6)),
        (300, (10, 10, 0)),
        (600, (15, 14, 30)),
        (1199, (20, 20, 1)),
        (1200, (20, 20, 0)),
    ],
)
def test_estimate_dimensions_java_table(n: int, expected: tuple[int, int, int]) -> None:
    assert estimate_dimensions(n, 20, 20) == expected


def test_estimate_widens_when_height_clamped() -> None:
    # Java's clamp would give 3x2 triads (18 boards) for 24 boards on spin24.
    assert estimate_dimensions(24, 4, 2) == (4, 2, 0)
    assert estimate_dimensions(25, 4, 2)[2] < 0


def test_fill_spin24_with_single_boards() -> None:
    allocator = Allocator(SPIN24)
    free = set(SPIN24.boards)
    taken = []
    for _ in range(24):
        allocation = allocator.allocate(AllocationRequest(), free)
        assert allocation is not None
        assert len(allocation.boards) == 1 and allocation.depth == 1
        assert (allocation.width, allocation.height) == (1, 1)
        board = allocation.boards[0]
        assert allocation.root == board and board in free
        assert allocation.connections == [(Chip(0, 0), SPIN24.boards[board].ip)]
        assert sorted(allocation.perimeter) == [(board, d) for d in Direction]
        free.remove(board)
        taken.append(board)
    assert taken == sorted(SPIN24.boards)
    assert allocator.allocate(AllocationRequest(), free) is None
    assert allocator.is_possible(AllocationRequest())


def test_single_board_preference_and_filtering() -> None:
    machine = with_dead(SPIN24, [Triad(0, 0, 0)])
    allocator = Allocator(machine)
    everything = set(SPIN24.boards)
    first = allocator.allocate(AllocationRequest(), everything)
    assert first is not None and first.root == Triad(0, 0, 1)  # the dead board is skipped
    preferred = [Triad(0, 0, 0), Triad(3, 1, 2), Triad(1, 1, 1)]
    chosen = allocator.allocate(AllocationRequest(), everything, preferred)
    assert chosen is not None and chosen.root == Triad(3, 1, 2)
    only = allocator.allocate(AllocationRequest(), {Triad(2, 1, 1)}, preferred)
    assert only is not None and only.root == Triad(2, 1, 1)


def test_1200_singles_on_spinnaker1m() -> None:
    allocator = Allocator(BIG)
    free = set(BIG.boards)
    seen = set()
    for _ in range(1200):
        allocation = allocator.allocate(AllocationRequest(num_boards=1), free)
        assert allocation is not None
        free.discard(allocation.root)
        seen.add(allocation.root)
    assert len(seen) == 1200 and not free
    assert allocator.allocate(AllocationRequest(num_boards=1), free) is None


def test_three_boards_connections() -> None:
    allocation = Allocator(BIG).allocate(AllocationRequest(num_boards=3), set(BIG.boards))
    assert allocation is not None
    assert allocation.boards == [Triad(0, 0, 0), Triad(0, 0, 1), Triad(0, 0, 2)]
    assert [list(c) for c, _ in allocation.connections] == [[0, 0], [8, 4], [4, 8]]
    assert [ip for _, ip in allocation.connections] == ["127.1.0.1", "127.1.0.9", "127.1.0.17"]
    assert (allocation.width, allocation.height, allocation.depth) == (1, 1, 3)
    # A triad has 3 internal links; the other 18 - 6 directed links are perimeter.
    assert len(allocation.perimeter) == 12
    assert allocation.perimeter == perimeter_for(BIG, allocation.boards)


def test_whole_triad_perimeter_on_one_triad_torus() -> None:
    three = parse_machine_definitions(
        {
            "machines": [
                {
                    "name": "three",
                    "width": 1,
                    "height": 1,
                    "board-locations": {f"[0,0,{z}]": [0, 0, z] for z in range(3)},
                    "bmp-ips": {"[c:0,f:0]": "10.0.0.0"},
                    "spinnaker-ips": {f"[0,0,{z}]": f"10.0.0.{8 * z + 1}" for z in range(3)},
                }
            ]
        }
    )[0]
    allocation = Allocator(three).allocate(AllocationRequest(width=1, height=1), set(three.boards))
    assert allocation is not None and len(allocation.boards) == 3
    assert allocation.perimeter == []  # every link wraps back into the triad


def test_rectangle_relative_connections_wrap() -> None:
    allocator = Allocator(SPIN24)
    free = set(SPIN24.boards) - {
        Triad(x, y, z) for x in range(2) for y in range(2) for z in range(3)
    }
    allocation = allocator.allocate(AllocationRequest(width=2, height=2), free)
    assert allocation is not None
    assert allocation.root == Triad(2, 0, 0)
    assert len(allocation.boards) == 12 and allocation.boards[0] == allocation.root
    assert allocation.connections[0][0] == Chip(0, 0)
    chips = {c for c, _ in allocation.connections}
    assert Chip(12, 12) in chips and Chip(16, 20) in chips
    assert (allocation.width, allocation.height, allocation.depth) == (2, 2, 3)
    # The rectangle spans the full machine height, so y links wrap inside the job.
    assert all(neighbour(t, d, 4, 2) not in set(allocation.boards) for t, d in allocation.perimeter)
    assert allocator.allocate(AllocationRequest(width=3, height=2), free) is None


def test_rectangle_over_dead_boards() -> None:
    machine = with_dead(SPIN24, [Triad(1, 0, 1)])
    allocator = Allocator(machine)
    free = set(machine.functioning_boards)
    strict = AllocationRequest(width=4, height=2)
    assert allocator.allocate(strict, free) is None
    assert not allocator.is_possible(strict)
    loose = AllocationRequest(width=4, height=2, max_dead_boards=1)
    allocation = allocator.allocate(loose, free)
    assert allocation is not None and len(allocation.boards) == 23
    assert Triad(1, 0, 1) not in allocation.boards
    assert (Triad(1, 0, 0), Direction.NORTH_EAST) in allocation.perimeter
    # Smaller rectangles move away from the dead board.
    small = allocator.allocate(AllocationRequest(width=2, height=2), free)
    assert small is not None and Triad(1, 0, 1) not in small.boards and len(small.boards) == 12


def test_search_uses_inner_positions() -> None:
    # Dead boards in every corner triad: only the centre 2x2 of a 4x4 machine is clean.
    corners = [Triad(x, y, 0) for x in (0, 3) for y in (0, 3)]
    cut = {
        "name": "four",
        "width": 4,
        "height": 4,
        "dead-boards": [list(t) for t in corners],
        "board-locations": {
            f"[{x},{y},{z}]": [0, y, 3 * x + z]
            for x in range(4)
            for y in range(4)
            for z in range(3)
        },
        "bmp-ips": {f"[c:0,f:{y}]": f"10.1.{y}.0" for y in range(4)},
        "spinnaker-ips": {
            f"[{x},{y},{z}]": f"10.1.{y}.{10 * x + z + 1}"
            for x in range(4)
            for y in range(4)
            for z in range(3)
        },
    }
    four = parse_machine_definitions({"machines": [cut]})[0]
    allocator = Allocator(four)
    request = AllocationRequest(width=2, height=2)
    assert allocator.is_possible(request)
    allocation = allocator.allocate(request, four.functioning_boards)
    assert allocation is not None and len(allocation.boards) == 12
    assert not set(allocation.boards) & set(corners)


def test_dead_link_splits_rectangle() -> None:
    # Cut (0,0,1) off from the rest of its triad and from (1,0,*) by dead links.
    links = {
        "[0,0,1]": ["north", "east", "north_east", "south", "south_west", "west"],
    }
    machine = with_dead(SPIN24, [], links)
    allocator = Allocator(machine)
    allocation = allocator.allocate(
        AllocationRequest(width=1, height=1, max_dead_boards=1), {Triad(0, 0, z) for z in range(3)}
    )
    assert allocation is not None
    assert allocation.boards == [Triad(0, 0, 0), Triad(0, 0, 2)]
    assert (Triad(0, 0, 0), Direction.NORTH_EAST) in allocation.perimeter
    strict = AllocationRequest(width=1, height=1)
    assert allocator.allocate(strict, set(machine.boards)) is not None  # another triad
    assert allocator.allocate(strict, {Triad(0, 0, z) for z in range(3)}) is None


def test_num_boards_with_dead_boards() -> None:
    machine = with_dead(SPIN24, [Triad(0, 0, 1), Triad(1, 0, 2)])
    allocator = Allocator(machine)
    everything = machine.functioning_boards
    # 6 boards -> 2x1 triads with no slack; placement must avoid the dead boards.
    six = allocator.allocate(AllocationRequest(num_boards=6), everything)
    assert six is not None and len(six.boards) == 6
    assert (six.width, six.height) == (2, 1)
    # 24 boards cannot be met with 22 working boards, but 23 with 1 dead allowed can.
    assert not allocator.is_possible(AllocationRequest(num_boards=24))
    assert not allocator.is_possible(AllocationRequest(num_boards=24, max_dead_boards=1))
    big = allocator.allocate(AllocationRequest(num_boards=23, max_dead_boards=1), everything)
    assert big is not None and len(big.boards) == 22
    # The left 2x1 triads have 4 working boards, but (1, 0, *) is only reachable from
    # (0, 0, 0) through the dead (0, 0, 1): a 5-board job with 1 dead cannot go there.
    only_left = {Triad(x, 0, z) for x in range(2) for z in range(3)} & everything
    assert len(only_left) == 4
    request = AllocationRequest(num_boards=5, max_dead_boards=1)
    assert allocator.allocate(request, only_left) is None
    three = allocator.allocate(AllocationRequest(num_boards=5, max_dead_boards=3), only_left)
    assert three is not None and three.boards == [Triad(0, 0, 0), Triad(0, 0, 2)]
    # With only (1, 0, 2) dead, the same area gives 5 boards for 6 with 1 dead allowed.
    other = Allocator(with_dead(SPIN24, [Triad(1, 0, 2)]))
    left = {Triad(x, 0, z) for x in range(2) for z in range(3)} - {Triad(1, 0, 2)}
    assert other.allocate(AllocationRequest(num_boards=6), left) is None
    five = other.allocate(AllocationRequest(num_boards=6, max_dead_boards=1), left)
    assert five is not None and len(five.boards) == 5
    assert allocator.allocate(AllocationRequest(num_boards=7), set()) is None


def test_specific_board_and_rect_at_board() -> None:
    allocator = Allocator(SPIN24)
    free = set(SPIN24.boards)
    board = allocator.allocate(AllocationRequest(board=Triad(2, 1, 2)), free)
    assert board is not None and board.boards == [Triad(2, 1, 2)] and board.depth == 1
    assert (
        allocator.allocate(AllocationRequest(board=Triad(2, 1, 2)), free - {Triad(2, 1, 2)}) is None
    )
    at = allocator.allocate(AllocationRequest(width=2, height=1, board=Triad(3, 1, 0)), free)
    assert at is not None and at.root == Triad(3, 1, 0)
    assert {t[:2] for t in at.boards} == {(3, 1), (0, 1)}  # wraps in x
    assert at.connections[3][0] == Chip(12, 0)
    not_root = AllocationRequest(width=1, height=1, board=Triad(1, 1, 1))
    assert not allocator.is_possible(not_root)
    assert allocator.allocate(not_root, free) is None
    assert not allocator.is_possible(AllocationRequest(board=Triad(4, 0, 0)))
    dead = Allocator(with_dead(SPIN24, [Triad(1, 1, 0)]))
    assert not dead.is_possible(AllocationRequest(board=Triad(1, 1, 0)))
    assert not dead.is_possible(AllocationRequest(width=1, height=1, board=Triad(1, 1, 0)))


def test_impossible_requests() -> None:
    allocator = Allocator(SPIN24)
    assert not allocator.is_possible(AllocationRequest(num_boards=25))
    assert not allocator.is_possible(AllocationRequest(width=5, height=1))
    assert not allocator.is_possible(AllocationRequest(width=1, height=3))
    assert allocator.is_possible(AllocationRequest(num_boards=24))
    assert allocator.is_possible(AllocationRequest(width=4, height=2))
    full = allocator.allocate(AllocationRequest(num_boards=24), set(SPIN24.boards))
    assert full is not None and len(full.boards) == 24 and full.perimeter == []
    spin5 = Allocator(builtin_machine("spin5"))
    assert spin5.is_possible(AllocationRequest())
    assert not spin5.is_possible(AllocationRequest(num_boards=2))
    assert not spin5.is_possible(AllocationRequest(width=1, height=1))
    assert spin5.is_possible(AllocationRequest(width=1, height=1, max_dead_boards=2))
    single = spin5.allocate(
        AllocationRequest(width=1, height=1, max_dead_boards=2), {Triad(0, 0, 0)}
    )
    assert single is not None and len(single.perimeter) == 6 and single.depth == 1


def test_big_rectangles_on_1m() -> None:
    allocator = Allocator(BIG)
    free = set(BIG.boards)
    jobs = []
    while (
        allocation := allocator.allocate(AllocationRequest(width=4, height=4), free)
    ) is not None:
        assert len(allocation.boards) == 48
        free -= set(allocation.boards)
        jobs.append(allocation)
    assert len(jobs) == 25 and not free
    whole = allocator.allocate(AllocationRequest(num_boards=1199), set(BIG.boards))
    assert whole is not None and len(whole.boards) == 1200 and whole.perimeter == []
    chips = {c for c, _ in whole.connections}
    assert len(chips) == 1200 and all(0 <= c.x < 240 and 0 <= c.y < 240 for c in chips)


@settings(max_examples=40, deadline=None)
@given(
    st.sets(st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(0, 2)), max_size=12),
    st.integers(1, 4),
    st.integers(1, 2),
    st.integers(0, 3),
)
def test_rectangle_invariants(
    taken: set[tuple[int, int, int]], w: int, h: int, max_dead: int
) -> None:
    allocator = Allocator(SPIN24)
    free = set(SPIN24.boards) - {Triad(*t) for t in taken}
    request = AllocationRequest(width=w, height=h, max_dead_boards=max_dead)
    allocation = allocator.allocate(request, free)
    if allocation is None or classify(request) is RequestKind.SINGLE:
        return
    boards = set(allocation.boards)
    assert boards <= free and len(boards) == len(allocation.boards)
    assert len(boards) >= 3 * w * h - max_dead
    root = allocation.root
    assert root.z == 0 and allocation.boards[0] == root
    for t in boards:
        assert (t.x - root.x) % 4 < w and (t.y - root.y) % 2 < h
    assert set(allocation.perimeter) == set(perimeter_for(SPIN24, boards))
    assert allocation.connections == connections_for(SPIN24, boards, root)
