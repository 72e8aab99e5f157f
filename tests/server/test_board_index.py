"""The lifecycle's in-memory board index."""

from __future__ import annotations

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
    assert index.rested() == [Triad(0, 0, 2), Triad(0, 0, 1), Triad(0, 0, 0)]
    index.take([Triad(0, 0, 1)])
    assert index.longest_rested() == Triad(0, 0, 0)
    index.release([3], 2.0)
    assert index.longest_rested() == Triad(0, 0, 2)
    index.release([2], 3.0)
    index.take([Triad(0, 0, 2)])
    assert index.longest_rested() == Triad(0, 0, 1)
    assert index.rested() == [Triad(0, 0, 2), Triad(0, 0, 1), Triad(0, 0, 0)]
    index.take(list(index.free))
    assert index.longest_rested() is None


def test_unusable_boards_are_never_free() -> None:
    dead = BoardInfo(1, 1, 0, 0, 0, 0, 0, 0, None, False, None, False, 0.0)
    index = BoardIndex([dead, _board(2, 1)], {Triad(0, 0, 0)}, generation=3)
    assert index.free == set() and index.generation == 3
    index.release([1, 2], 1.0)
    assert index.free == set()
    assert index.by_triad[Triad(0, 0, 1)] == 2 and index.by_id[1] == Triad(0, 0, 0)
