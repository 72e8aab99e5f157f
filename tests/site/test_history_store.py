"""The history move in batches, on both databases: a backlog larger than one batch
moves entirely (but the newest job), usage is kept, and purging empties history."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from pyspalloc.geometry import builtin_machine
from pyspalloc.server.store import RequestSpec, Store
from pyspalloc.server.store.history import MOVE_BATCH
from pyspalloc.server.store.models import AllocationHistoryRow, JobRow


def test_backlog_moves_in_batches(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.sync_machine(builtin_machine("spin24", "127.1.0.0"))
        machine = store.machine("spin24")
        assert machine is not None
        user = store.create_user("dora", None)
        group_id, _ = store.group_for(user.id, None)
        board = store.board_at(machine.id, 0, 0, 0)
        assert board is not None and group_id is not None
        count = MOVE_BATCH * 2 + 5
        for _ in range(count):
            job = store.create_job(
                machine_id=machine.id, owner_id=user.id, group_id=group_id,
                keepalive_interval=60.0, keepalive_host=None, original_request="{}",
                spec=RequestSpec(num_boards=1), priority=1.0,
            )  # fmt: skip
            assert store.allocate(job.id, [board.id], board.id, 1, 1, 1)
            assert store.destroy_job(job.id, "done")
            store.release_boards(job.id, [board.id])
        used = store.group_usage(group_id, time.time())
        assert used > 0
        assert store.move_to_history(time.time() + 1.0) == count - 1
        with store.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(JobRow)) == 1
            moved_boards = conn.scalar(select(func.count()).select_from(AllocationHistoryRow))
        assert moved_boards == count - 1
        assert abs(store.group_usage(group_id, time.time()) - used) < 1e-6
        assert store.count_history() == count - 1
        ids = store.list_jobs(deleted=True, limit=200, start=0, owner_id=user.id)
        assert len(ids) == 200 and ids == sorted(ids, reverse=True)
        assert store.purge_history(time.time() + 1.0) == count - 1
        assert store.count_history() == 0
    finally:
        store.close()
