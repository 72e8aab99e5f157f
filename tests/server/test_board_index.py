"""The lifecycle's in-memory board index."""

from __future__ import annotations

import math

from pyspalloc.geometry import Triad
from pyspalloc.server.board_index import BoardIndex
from pyspalloc.server.store import BoardInfo


def _board(board_id: int, z: int, *, job: int | None = None, off: float = 0.0) -> BoardInfo:
    return BoardInfo(board_id, 1, 0, 0, z, 0, 0, z, None, True, job, False, off)


def test_longest_rested_follows_power_off_time_then_id() -> None:
    boards = [_board(1, 0, off=5.0), _board(2, 1, off=1.0), _board(3, 2, job=9)]
    index = BoardIndex(boards, {Triad(0, 0, z) for z in range(3)}, generation=0)
    assert index.free == {Triad(0, 0, 0), Triad(0, 0, 1)}
    assert index.longest_rested() == Triad(0, 0, 1)
    assert index.rested(math.inf) == [Triad(0, 0, 2), Triad(0, 0, 1), Triad(0, 0, 0)]
    index.take([Triad(0, 0, 1)])
    assert index.longest_rested() == Triad(0, 0, 0)
    index.release([3], 2.0)
    assert index.longest_rested() == Triad(0, 0, 2)
    index.release([2], 3.0)
    index.take([Triad(0, 0, 2)])
    assert index.longest_rested() == Triad(0, 0, 1)
    assert index.rested(math.inf) == [Triad(0, 0, 2), Triad(0, 0, 1), Triad(0, 0, 0)]
    index.take(list(index.free))
    assert index.longest_rested() is None


def test_unusable_boards_are_never_free() -> None:
    dead = BoardInfo(1, 1, 0, 0, 0, 0, 0, 0, None, False, None, False, 0.0)
    index = BoardIndex([dead, _board(2, 1)], {Triad(0, 0, 0)}, generation=3)
    assert index.free == set() and index.generation == 3
    index.release([1, 2], 1.0)
    assert index.free == set()
    assert index.by_triad[Triad(0, 0, 1)] == 2 and index.by_id[1] == Triad(0, 0, 0)


def test_rectangle_roots_pack_among_boards_that_rested_enough() -> None:
    """With a rest time, rested boards come by position and resting ones after them."""
    boards = [
        BoardInfo(1, 1, 2, 0, 0, 0, 0, 0, "a", True, None, False, 0.0),
        BoardInfo(2, 1, 0, 0, 0, 0, 0, 1, "b", True, None, False, 50.0),
        BoardInfo(3, 1, 1, 0, 0, 0, 0, 2, "c", True, None, False, 95.0),
        BoardInfo(4, 1, 3, 0, 0, 0, 0, 3, "d", True, None, False, 90.0),
    ]
    index = BoardIndex(boards, {Triad(x, 0, 0) for x in range(4)}, 0)
    # rested 30 s at 100: (0,0,0) off at 50 and (2,0,0) never; (3,0,0) and (1,0,0) not yet
    assert index.rested(30.0, now=100.0) == [
        Triad(0, 0, 0), Triad(2, 0, 0), Triad(3, 0, 0), Triad(1, 0, 0)
    ]  # fmt: skip
    # later every board rested: all by position
    assert index.rested(30.0, now=200.0) == [Triad(x, 0, 0) for x in range(4)]
    # none rested long enough: longest rested first
    assert index.rested(1000.0, now=200.0) == [
        Triad(2, 0, 0), Triad(0, 0, 0), Triad(3, 0, 0), Triad(1, 0, 0)
    ]  # fmt: skip
