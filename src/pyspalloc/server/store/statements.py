"""Core statements of the job hot paths, built once with bound parameters.

Building a statement (``update(...).where(...).values(...)``) costs more than running
it from SQLAlchemy's compiled cache, so the statements run for every job are built here
once and executed with parameter dictionaries.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Float,
    Table,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.sql import ClauseElement

from pyspalloc.server.store.models import (
    BoardAllocationRow,
    BoardRow,
    JobRequestRow,
    JobRow,
    JobState,
    MachineRow,
    UserRow,
)

JOBS = cast(Table, JobRow.__table__)
REQUESTS = cast(Table, JobRequestRow.__table__)
BOARDS = cast(Table, BoardRow.__table__)
ALLOCATIONS = cast(Table, BoardAllocationRow.__table__)
DESTROYED = int(JobState.DESTROYED)
_J, _R, _B = JOBS.c, REQUESTS.c, BOARDS.c
#: bound parameter names never equal a column name: in an UPDATE such a name would be
#: taken for a SET value
_ID: BindParameter[int] = bindparam("jid")

#: the columns of :class:`BoardInfo`, in order
BOARD_COLUMNS = (
    BoardRow.id, BoardRow.machine_id, BoardRow.x, BoardRow.y, BoardRow.z, BoardRow.cabinet,
    BoardRow.frame, BoardRow.board_num, BoardRow.address, BoardRow.functioning, BoardRow.job_id,
    BoardRow.powered, BoardRow.power_off_time,
)  # fmt: skip

#: the columns of :class:`JobInfo`, in order, for plain (Core) reads on hot paths
JOB_COLUMNS = select(
    JobRow.id, JobRow.machine_id, MachineRow.name, JobRow.owner_id, UserRow.name,
    JobRow.state, JobRow.keepalive_interval, JobRow.keepalive_time, JobRow.keepalive_host,
    JobRow.create_time, JobRow.finish_time, JobRow.reason, JobRow.original_request,
    JobRow.width, JobRow.height, JobRow.depth, JobRow.root_id, JobRow.power_target,
    JobRow.from_queue,
).join(MachineRow, MachineRow.id == JobRow.machine_id).join(
    UserRow, UserRow.id == JobRow.owner_id
)  # fmt: skip

GET_JOB = JOB_COLUMNS.where(JobRow.id == _ID)

HELD = (
    select(*BOARD_COLUMNS)
    .where(BoardRow.job_id == _ID)
    .order_by(BoardRow.x, BoardRow.y, BoardRow.z)
)

BOARD = select(*BOARD_COLUMNS).where(BoardRow.id == bindparam("board_id"))
BOARD_AT = select(*BOARD_COLUMNS).where(
    BoardRow.machine_id == bindparam("mid"),
    BoardRow.x == bindparam("x"),
    BoardRow.y == bindparam("y"),
    BoardRow.z == bindparam("z"),
)

#: executed with every column of the new row as a parameter (these)
INSERT_JOB = insert(JOBS)
JOB_INSERT_KEYS = (
    "machine_id", "owner_id", "group_id", "state", "keepalive_interval", "keepalive_time",
    "keepalive_host", "create_time", "original_request", "power_target", "from_queue",
)  # fmt: skip
INSERT_REQUEST = insert(REQUESTS)
REQUEST_INSERT_KEYS = (
    "job_id", "num_boards", "width", "height", "board_id", "max_dead_boards", "priority",
    "importance",
)  # fmt: skip
INSERT_ALLOCATIONS = insert(ALLOCATIONS)

LIVE_JOBS_OF = (
    select(func.count())
    .select_from(JOBS)
    .where(_J.owner_id == bindparam("owner"), _J.state != DESTROYED)
)

QUEUED = (
    select(_R.job_id, _J.machine_id, _R.num_boards, _R.width, _R.height, _R.board_id,
           _R.max_dead_boards, _R.priority, _R.importance)
    .join(JOBS, _J.id == _R.job_id)
    .where(_J.state == int(JobState.QUEUED))
    .order_by(_R.importance.desc(), _R.job_id)
)  # fmt: skip

_LIVE = (_J.id == _ID, _J.state != DESTROYED)
_OWNED = _J.owner_id == bindparam("oid")
_KEEPALIVE: dict[str, Any] = {
    "keepalive_time": bindparam("now"),
    "keepalive_host": bindparam("host"),
}
KEEPALIVE = update(JOBS).where(*_LIVE).values(_KEEPALIVE)
KEEPALIVE_OWNED = update(JOBS).where(*_LIVE, _OWNED).values(_KEEPALIVE)

_DESTROY: dict[str, Any] = {
    "state": DESTROYED,
    "finish_time": bindparam("now"),
    "reason": bindparam("why"),
}
DESTROY = update(JOBS).where(*_LIVE).values(_DESTROY)
DESTROY_OWNED = update(JOBS).where(*_LIVE, _OWNED).values(_DESTROY)
DROP_REQUEST = delete(REQUESTS).where(_R.job_id == _ID)

ALLOCATE = (
    update(JOBS)
    .where(_J.id == _ID, _J.state == int(JobState.QUEUED))
    .values(
        width=bindparam("w"), height=bindparam("h"), depth=bindparam("d"),
        root_id=bindparam("root"), allocation_time=bindparam("now"),
        state=int(JobState.POWER), power_target=True, from_queue=True,
    )
)  # fmt: skip
TAKE_BOARDS = (
    update(BOARDS)
    .where(_B.id.in_(bindparam("ids", expanding=True)), _B.job_id.is_(None))
    .values(job_id=_ID)
)


def id_list(n: int) -> list[BindParameter[int]]:
    """``n`` id parameters ``b0`` ... (values: :func:`id_params`)."""
    return [bindparam(f"b{i}") for i in range(n)]


def id_params(ids: list[int]) -> dict[str, int]:
    """The values of :func:`id_list` parameters."""
    return {f"b{i}": b for i, b in enumerate(ids)}


def held_by(n: int) -> ClauseElement:
    """The boards ``n`` jobs hold (parameters ``b0`` ... : the job ids)."""
    return select(*BOARD_COLUMNS).where(_B.job_id.in_(id_list(n)))


def owned_jobs(n: int) -> ClauseElement:
    """Those of ``n`` jobs that ``owner`` owns (parameters ``owner``, ``b0`` ...)."""
    return JOB_COLUMNS.where(JobRow.owner_id == bindparam("owner"), JobRow.id.in_(id_list(n)))


def take_boards(n: int) -> Update:
    """Give ``n`` free boards to a job (the row count says whether all were free)."""
    return update(BOARDS).where(_B.id.in_(id_list(n)), _B.job_id.is_(None)).values(job_id=_ID)


def release_boards(n: int) -> Update:
    """Free ``n`` boards of a job, powered off at ``now``."""
    return (
        update(BOARDS)
        .where(_B.job_id == _ID, _B.id.in_(id_list(n)))
        .values(job_id=None, powered=False, power_off_time=bindparam("now"))
    )


#: record in the history every board a job holds now (run right after a grant)
RECORD_ALLOCATION = insert(ALLOCATIONS).from_select(
    ["job_id", "board_id", "time"],
    select(_B.job_id, _B.id, bindparam("now", type_=Float)).where(_B.job_id == _ID),
)

POWER_DONE = (
    update(JOBS)
    .where(_J.id == _ID, _J.state == int(JobState.POWER), _J.power_target == bindparam("on"))
    .values(state=int(JobState.READY))
)
SET_POWERED = update(BOARDS).where(_B.job_id == _ID).values(powered=bindparam("on"))
#: a user's power-off: the boards start resting (``off-wait-time``) now
SET_POWERED_OFF = (
    update(BOARDS).where(_B.job_id == _ID).values(powered=False, power_off_time=bindparam("now"))
)
