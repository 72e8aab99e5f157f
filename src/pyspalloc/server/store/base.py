"""Engine and transaction handling shared by the parts of the :class:`Store`."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

from pyspalloc.server.store.hot import HotStatements
from pyspalloc.server.store.models import Base


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _create_private(url: str) -> None:
    """Create a new SQLite database file readable by its owner only (0600).

    SQLite gives the ``-wal`` and ``-shm`` files the database file's permissions.
    """
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` (SQLite file or PostgreSQL via psycopg 3).

    Parameters
    ----------
    url:
        SQLAlchemy database URL.

    Returns
    -------
    Engine
        The engine; SQLite connections use WAL and a 30 s busy timeout. A local SQLite
        file cannot go stale, so only PostgreSQL connections are pinged at checkout.
    """
    if url.startswith("sqlite"):
        try:
            _create_private(url)
        except OSError:  # it exists, or SQLite will report why it cannot be opened
            pass
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30.0},
            paramstyle="named",  # the hot path passes dictionaries to the driver
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=30)


class StoreBase:
    """Owns the engine; hands out read and (serialised) write transactions.

    All writes of this process go through one lock, so read-modify-write
    sequences such as allocation never race each other, on either database.
    """

    #: quota (board-seconds, None: unlimited) of the personal group of a new user ...
    default_user_quota: float | None = None
    #: ... and of a collab's group made on first use (Java's defaults)
    default_collab_quota: float | None = 3_600_000.0

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sqlite = url.startswith("sqlite")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.RLock()
        #: bumped by every write of this store that changes which boards may be allocated
        #: other than by allocation itself (functioning flags, machine definitions);
        #: the lifecycle's in-memory board index reloads when it changes
        self.board_generation = 0
        Base.metadata.create_all(self.engine)
        #: the job hot path's statements, compiled for this engine (after it connected)
        self.hot = HotStatements(self.engine.dialect)
        #: SQLite: the driver connection the hot path writes on, kept open
        self._writer: PoolProxiedConnection | None = None

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """Open a transaction that is committed (durably) when the block ends."""
        with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def _rconn(self) -> Iterator[Connection]:
        """A plain (Core) connection for a read on a hot path; no ORM session."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _wconn(self) -> Iterator[Connection]:
        """A Core transaction, serialised like :meth:`_write`, committed when the block ends."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _wconn_single(self) -> Iterator[Connection]:
        """A Core transaction for a write that is one self-contained statement.

        PostgreSQL runs it without the process's write lock (the row lock is enough).
        SQLite keeps the lock: an unserialised commit could make another transaction's
        deferred read-then-write fail with SQLITE_BUSY_SNAPSHOT.
        """
        if self._sqlite:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    @contextmanager
    def _cursor(self) -> Iterator[DBAPICursor]:
        """A driver cursor for a hot-path read.

        SQLite reads on the writer's connection, between writes (a pool checkout costs
        more than such a read); PostgreSQL on a pooled connection.
        """
        if self._sqlite:
            with self._write_lock:
                cursor = self._writer_connection().cursor()
                try:
                    yield cursor
                finally:
                    cursor.close()
            return
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            raw.close()  # the pool ends the read's transaction

    def _writer_connection(self) -> PoolProxiedConnection:
        """SQLite's writer connection, opened on first use (call under the write lock)."""
        if self._writer is None:
            self._writer = self.engine.raw_connection()
        return self._writer

    @contextmanager
    def _write_cursor(self, *, single: bool = False) -> Iterator[DBAPICursor]:
        """A driver cursor for a hot-path write, committed when the block ends.

        Serialised like :meth:`_wconn`; with ``single`` (one self-contained statement)
        PostgreSQL runs it without the process's write lock, as :meth:`_wconn_single`.
        SQLite writes on one connection kept open for the purpose.
        """
        if self._sqlite:
            with self._write_lock:
                yield from self._committed(self._writer_connection(), keep=True)
        elif single:
            yield from self._committed(self.engine.raw_connection(), keep=False)
        else:
            with self._write_lock:
                yield from self._committed(self.engine.raw_connection(), keep=False)

    def _committed(self, raw: PoolProxiedConnection, *, keep: bool) -> Iterator[DBAPICursor]:
        cursor = raw.cursor()
        try:
            yield cursor
            raw.commit()
        except BaseException:
            try:
                raw.rollback()
            except Exception:  # the connection broke: never use it again
                raw.invalidate()
                if keep:
                    self._writer = None
            raise
        finally:
            cursor.close()
            if not keep:
                raw.close()

    def boards_changed(self) -> None:
        """Record that board availability changed other than by allocation."""
        self.board_generation += 1

    def close(self) -> None:
        """Release all database connections."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()
