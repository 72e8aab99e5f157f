"""The job hot path's statements, compiled once for the engine and run on DB-API cursors.

Every job passes through the same dozen one-row statements (create, state read,
keepalive, allocate, power done, destroy, release). SQLAlchemy builds and compiles
them (:mod:`~pyspalloc.server.store.statements`), but running them through
``Connection.execute`` costs several times the database's own work for such small
statements (docs/performance.md §3.1). So each is compiled here once, for the engine's
own dialect and parameter style, and the store runs the SQL text on the driver's cursor
with a plain dictionary of parameters, merged with the statement's own constants.

Only statements whose parameters are numbers, strings, booleans and None belong here:
no SQLAlchemy type processing happens on this path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from pyspalloc.server.store import statements as q

#: one row as the driver returns it
Row = Sequence[Any]


@dataclass(frozen=True)
class HotStatement:
    """One statement's SQL text and the values of its constant parameters."""

    sql: str
    constants: Mapping[str, Any]

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The full parameter dictionary for ``values``."""
        return {**self.constants, **values} if self.constants else dict(values)


def compile_for(
    dialect: Dialect, statement: ClauseElement, keys: Iterable[str] | None = None
) -> HotStatement:
    """Compile ``statement`` for ``dialect``; ``keys``: the columns an INSERT is given."""
    compiled = cast(
        SQLCompiler,
        statement.compile(dialect=dialect, column_keys=list(keys) if keys else None),
    )
    given = set(keys or ())
    constants = {
        k: v
        for k, v in compiled.params.items()
        if k not in given and not compiled.binds[k].required  # a value of the statement's
    }
    return HotStatement(str(compiled), constants)


class HotStatements:
    """The hot path's statements compiled for one engine's dialect."""

    def __init__(self, dialect: Dialect) -> None:
        def c(statement: ClauseElement, keys: Iterable[str] | None = None) -> HotStatement:
            return compile_for(dialect, statement, keys)

        self.live_jobs_of = c(q.LIVE_JOBS_OF)
        self.insert_job = c(q.INSERT_JOB.returning(q.JOBS.c.id), q.JOB_INSERT_KEYS)
        self.insert_request = c(q.INSERT_REQUEST, q.REQUEST_INSERT_KEYS)
        self.get_job = c(q.GET_JOB)
        self.keepalive = c(q.KEEPALIVE)
        self.keepalive_owned = c(q.KEEPALIVE_OWNED)
        self.destroy = c(q.DESTROY)
        self.destroy_owned = c(q.DESTROY_OWNED)
        self.drop_request = c(q.DROP_REQUEST)
        self.held = c(q.HELD)
        self.board = c(q.BOARD)
        self.board_at = c(q.BOARD_AT)
        self.queued = c(q.QUEUED)
        self.allocate = c(q.ALLOCATE)
        self.record_allocation = c(q.RECORD_ALLOCATION)
        self.power_done = c(q.POWER_DONE)
        self.set_powered = c(q.SET_POWERED)
        self.set_powered_off = c(q.SET_POWERED_OFF)
        self._dialect = dialect
        self._by_size: dict[tuple[str, int], HotStatement] = {}

    def take_boards(self, ids: list[int]) -> tuple[HotStatement, dict[str, int]]:
        """:func:`~pyspalloc.server.store.statements.take_boards` for these boards, and
        their parameters."""
        return self._over("take", q.take_boards, ids)

    def held_by(self, job_ids: list[int]) -> tuple[HotStatement, dict[str, int]]:
        """:func:`~pyspalloc.server.store.statements.held_by` for these jobs, and their
        parameters."""
        return self._over("held", q.held_by, job_ids)

    def owned_jobs(self, ids: list[int]) -> tuple[HotStatement, dict[str, int]]:
        """:func:`~pyspalloc.server.store.statements.owned_jobs` for these jobs, and their
        parameters (less ``owner``)."""
        return self._over("owned", q.owned_jobs, ids)

    def release_boards(self, ids: list[int]) -> tuple[HotStatement, dict[str, int]]:
        """:func:`~pyspalloc.server.store.statements.release_boards` for these boards, and
        their parameters."""
        return self._over("release", q.release_boards, ids)

    def _over(
        self, name: str, build: Callable[[int], ClauseElement], ids: list[int]
    ) -> tuple[HotStatement, dict[str, int]]:
        """A statement over an id list, compiled once per power of two of its length:
        the list is padded by repeating its last id, which changes no result."""
        size = 1 << (len(ids) - 1).bit_length() if ids else 1
        found = self._by_size.get((name, size))
        if found is None:
            found = self._by_size[(name, size)] = compile_for(self._dialect, build(size))
        padded = ids + [ids[-1] if ids else 0] * (size - len(ids))
        return found, q.id_params(padded)


def run(cursor: DBAPICursor, statement: HotStatement, values: Mapping[str, Any]) -> int:
    """Execute ``statement`` with ``values``; return the driver's row count."""
    cursor.execute(statement.sql, statement.params(values))
    return int(cursor.rowcount)


def fetch(cursor: DBAPICursor, statement: HotStatement, values: Mapping[str, Any]) -> list[Row]:
    """Execute a query; return its rows."""
    cursor.execute(statement.sql, statement.params(values))
    return list(cursor.fetchall())
