"""The Store facade on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from pyspalloc.geometry import builtin_machine
from pyspalloc.server.store import JobState, RequestSpec, Store, TrustLevel


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def _job(store: Store, owner: int, machine: int, **spec: int) -> int:
    return store.create_job(
        machine_id=machine,
        owner_id=owner,
        group_id=None,
        keepalive_interval=60.0,
        keepalive_host="127.0.0.1",
        original_request="{}",
        spec=RequestSpec(**spec),  # type: ignore[arg-type]
        priority=1.0,
    ).id


def test_users_tokens_sessions(store: Store) -> None:
    user = store.create_user("ann", "hash", TrustLevel.ADMIN)
    assert user.is_admin and store.count_users() == 1
    with pytest.raises(ValueError, match="already exists"):
        store.create_user("ann", None)
    assert store.user_group(user.id) is not None
    store.add_token(user.id, "h" * 64)
    assert store.user_for_token("h" * 64) == store.get_user("ann")
    assert store.user_for_token("x" * 64) is None
    store.create_session("k" * 64, "csrf", user.id)
    found = store.get_session("k" * 64, 60.0)
    assert found is not None and found.user is not None and found.user.name == "ann"
    assert found.csrf == "csrf"
    time.sleep(0.05)
    assert store.get_session("k" * 64, 0.01) is None
    assert store.purge_sessions(0.01) == 1
    assert store.get_session("k" * 64, 60.0) is None
    assert store.reserve_login(user.id, 2, 100.0)
    assert store.reserve_login(user.id, 2, 100.0)
    assert not store.reserve_login(user.id, 2, 100.0)
    locked = store.get_user("ann")
    assert locked is not None and locked.locked_until > time.time()
    assert store.update_user("ann", disabled=True).disabled  # type: ignore[union-attr]


def test_machine_sync_is_idempotent_and_keeps_state(store: Store) -> None:
    machine = builtin_machine("spin24")
    info = store.sync_machine(machine)
    assert (info.name, info.width, info.height, info.tags) == ("spin24", 4, 2, ("default",))
    boards = store.boards(info.id)
    assert len(boards) == 24
    user = store.create_user("ann", None)
    job = _job(store, user.id, info.id, num_boards=1)
    assert store.allocate(job, [boards[0].id], boards[0].id, 1, 1, 1)
    store.sync_machine(machine)
    assert len(store.boards(info.id)) == 24
    assert [b.id for b in store.held_boards(job)] == [boards[0].id]


def test_job_state_transitions(store: Store) -> None:
    info = store.sync_machine(builtin_machine("spin24"))
    boards = store.boards(info.id)
    user = store.create_user("ann", None)
    a = _job(store, user.id, info.id, num_boards=1)
    b = _job(store, user.id, info.id, num_boards=1)
    assert [q.job_id for q in store.queued_requests()] == [a, b]
    assert store.allocate(a, [boards[0].id], boards[0].id, 1, 1, 1)
    # a board can't be given twice
    assert not store.allocate(b, [boards[0].id], boards[0].id, 1, 1, 1)
    assert store.get_job(a).state == JobState.POWER  # type: ignore[union-attr]
    assert store.power_done(a, True)
    assert store.get_job(a).state == JobState.READY  # type: ignore[union-attr]
    assert store.held_boards(a)[0].powered
    store.age_requests([b])
    assert store.queued_requests()[0].importance == 1.0
    assert store.destroy_job(a, "done")
    assert not store.destroy_job(a, "again")
    assert store.destroyed_jobs_holding_boards() == [a]
    store.release_boards(a, [boards[0].id])
    assert store.destroyed_jobs_holding_boards() == []
    assert store.list_jobs(deleted=False, limit=10, start=0) == [b]
    assert store.list_jobs(deleted=True, limit=10, start=0) == [b, a]
    assert [x.id for x in store.allocation_history(a)] == [boards[0].id]
    old = store.get_job(b)
    assert old is not None
    assert store.expired_jobs(old.keepalive_time + 61.0) == [b]
    assert store.expired_jobs(old.keepalive_time + 1.0) == []


def test_requeue_after_failed_power_on(store: Store) -> None:
    info = store.sync_machine(builtin_machine("spin24"))
    boards = store.boards(info.id)
    user = store.create_user("ann", None)
    a = _job(store, user.id, info.id, num_boards=1)
    assert store.allocate(a, [boards[3].id], boards[3].id, 1, 1, 1)
    store.release_boards(a, [boards[3].id])
    assert store.requeue(a)
    job = store.get_job(a)
    assert job is not None and job.state == JobState.QUEUED and job.root_id is None
    assert [q.job_id for q in store.queued_requests()] == [a]


def test_report_threshold(store: Store) -> None:
    info = store.sync_machine(builtin_machine("spin24"))
    board = store.boards(info.id)[5]
    ann, bea = store.create_user("ann", None), store.create_user("bea", None)
    assert not store.report_board(board.id, None, ann.id, "flaky", 2)
    assert not store.report_board(board.id, None, ann.id, "flaky again", 2)  # same user
    assert store.report_board(board.id, None, bea.id, "flaky", 2)  # a second user
    assert not store.board(board.id).functioning  # type: ignore[union-attr]
    reports = store.board_reports()
    assert sorted((r.reporter, r.issue) for r in reports) == [
        ("ann", "flaky again"),
        ("bea", "flaky"),
    ]
    assert store.clear_board_reports(board.id) == 2
    assert store.board_reports() == []


def test_unconfigured_machines_leave_service(store: Store) -> None:
    store.sync_machine(builtin_machine("spin24"))
    store.sync_machine(builtin_machine("spin5"))
    assert store.retire_machines({"spin5"}) == ["spin24"]
    assert [m.name for m in store.machines()] == ["spin5"]
    assert store.machine("spin24") is None
    store.sync_machine(builtin_machine("spin24"))  # configured again: back in service
    assert [m.name for m in store.machines()] == ["spin24", "spin5"]


def test_grants_and_releases_in_batches(store: Store) -> None:
    """One transaction grants several jobs (id lists padded to a power of two), a taken
    board undoes the whole batch, and finish_power records READY and frees boards."""
    from pyspalloc.server.store import BoardGrant

    info = store.sync_machine(builtin_machine("spin24"))
    ids = [b.id for b in store.boards(info.id)]
    user = store.create_user("ann", None)
    a, b, c, d = (_job(store, user.id, info.id, num_boards=n) for n in (3, 5, 1, 1))
    granted = store.allocate_many(
        [BoardGrant(a, ids[0:3], ids[0], 1, 1, 3), BoardGrant(b, ids[3:8], ids[3], 2, 1, 3)]
    )
    assert granted == [a, b]
    assert [x.id for x in store.held_boards(a)] == ids[0:3]
    assert sorted(x.id for x in store.held_boards(b)) == ids[3:8]
    assert {j: [x.id for x in h] for j, h in store.held_boards_of([a, b, c, d]).items()} == {
        a: ids[0:3], b: ids[3:8]
    }  # fmt: skip
    assert sorted(x.id for x in store.allocation_history(b)) == ids[3:8]
    # d's grant overlaps a's boards: the batch (with c's valid grant first) changes nothing
    assert store.allocate_many([BoardGrant(c, [ids[9]], ids[9], 1, 1, 1),
                                BoardGrant(d, [ids[2]], ids[2], 1, 1, 1)]) is None  # fmt: skip
    for job in (c, d):
        assert store.held_boards(job) == []
        assert store.get_job(job).state == JobState.QUEUED  # type: ignore[union-attr]
    ready, when = store.finish_power([(a, True), (b, False)], [])
    assert ready == [a]  # b waits for power on, not off
    assert store.destroy_job(b, "done")
    ready, when = store.finish_power([(b, True)], [(b, ids[3:8])])
    assert ready == []  # destroyed meanwhile
    assert store.held_boards(b) == []
    assert all(x.power_off_time == when for x in store.boards(info.id) if x.id in ids[3:8])
