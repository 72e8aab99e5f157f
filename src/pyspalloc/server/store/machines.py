"""Machines, boards, BMPs, dead links and board reports."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from pyspalloc.server.store.base import StoreBase
from pyspalloc.server.store.hot import fetch
from pyspalloc.server.store.models import (
    BmpRow,
    BoardReportRow,
    BoardRow,
    DeadLinkRow,
    MachineRow,
    UserRow,
)
from pyspalloc.server.store.statements import BOARD_COLUMNS

if TYPE_CHECKING:
    from pyspalloc.geometry import MachineDefinition


@dataclass(frozen=True)
class MachineInfo:
    """A machine row."""

    id: int
    name: str
    tags: tuple[str, ...]
    width: int
    height: int
    in_service: bool


@dataclass(frozen=True)
class BoardInfo:
    """A board row."""

    id: int
    machine_id: int
    x: int
    y: int
    z: int
    cabinet: int
    frame: int
    board: int
    address: str | None
    functioning: bool
    job_id: int | None
    powered: bool
    power_off_time: float

    @property
    def triad(self) -> tuple[int, int, int]:
        """The logical coordinates."""
        return (self.x, self.y, self.z)


@dataclass(frozen=True)
class BoardReport:
    """A user's report of a problem with a board, as shown to admins."""

    id: int
    board_id: int
    machine: str
    triad: tuple[int, int, int]
    job_id: int | None
    reporter: str | None
    issue: str
    time: float
    functioning: bool


def _machine(row: MachineRow) -> MachineInfo:
    return MachineInfo(
        row.id, row.name, tuple(json.loads(row.tags)), row.width, row.height, row.in_service
    )


def board_info(row: BoardRow) -> BoardInfo:
    """Convert a board row into a detached :class:`BoardInfo`."""
    return BoardInfo(
        row.id,
        row.machine_id,
        row.x,
        row.y,
        row.z,
        row.cabinet,
        row.frame,
        row.board_num,
        row.address,
        row.functioning,
        row.job_id,
        row.powered,
        row.power_off_time,
    )


def board_from_row(r: Any) -> BoardInfo:
    """A board from a row of :data:`BOARD_COLUMNS` (SQLite's driver gives booleans as 0/1)."""
    (board_id, machine_id, x, y, z, cabinet, frame, board_num, address, functioning, job_id,
     powered, power_off_time) = r  # fmt: skip
    return BoardInfo(
        board_id, machine_id, x, y, z, cabinet, frame, board_num, address, bool(functioning),
        job_id, bool(powered), power_off_time,
    )  # fmt: skip


class MachinesMixin(StoreBase):
    """Machine and board persistence."""

    def sync_machine(self, definition: MachineDefinition) -> MachineInfo:
        """Record (or update) a machine definition, keeping the boards' job and power state.

        Parameters
        ----------
        definition:
            The machine, as :mod:`pyspalloc.geometry` describes it.

        Returns
        -------
        MachineInfo
            The machine's row.
        """
        with self._write() as s:
            m = s.scalar(select(MachineRow).where(MachineRow.name == definition.name))
            if m is None:
                m = MachineRow(
                    name=definition.name, width=definition.width, height=definition.height
                )
                s.add(m)
            m.tags = json.dumps(list(definition.tags))
            m.width, m.height, m.in_service = definition.width, definition.height, True
            s.flush()
            bmps = {
                (b.cabinet, b.frame): b
                for b in s.scalars(select(BmpRow).where(BmpRow.machine_id == m.id))
            }
            for (cabinet, frame), ip in definition.bmp_ips.items():
                bmp = bmps.get((cabinet, frame))
                if bmp is None:
                    bmp = BmpRow(machine_id=m.id, cabinet=cabinet, frame=frame, address=ip)
                    s.add(bmp)
                    bmps[(cabinet, frame)] = bmp
                bmp.address = ip
            s.flush()
            rows = {
                (b.x, b.y, b.z): b
                for b in s.scalars(select(BoardRow).where(BoardRow.machine_id == m.id))
            }
            for triad, bd in definition.boards.items():
                key = (int(triad[0]), int(triad[1]), int(triad[2]))
                cabinet, frame, number = (int(v) for v in bd.physical)
                row = rows.get(key)
                if row is None:
                    row = BoardRow(
                        machine_id=m.id,
                        x=key[0],
                        y=key[1],
                        z=key[2],
                        functioning=True,
                        powered=False,
                        power_off_time=0.0,
                        cabinet=cabinet,
                        frame=frame,
                        board_num=number,
                    )
                    s.add(row)
                    rows[key] = row
                row.cabinet, row.frame, row.board_num = cabinet, frame, number
                row.address = bd.ip
                bmp = bmps.get((cabinet, frame))
                row.bmp_id = None if bmp is None else bmp.id
                if not bd.functioning:
                    row.functioning = False
            s.flush()
            s.execute(delete(DeadLinkRow).where(DeadLinkRow.machine_id == m.id))
            for triad, direction in definition.dead_links:
                row = rows.get((int(triad[0]), int(triad[1]), int(triad[2])))
                if row is not None:
                    s.add(DeadLinkRow(machine_id=m.id, board_id=row.id, direction=int(direction)))
            info = _machine(m)
        self._machine_list = None
        self.boards_changed()
        return info

    def retire_machines(self, keep: set[str]) -> list[str]:
        """Take every machine not named in ``keep`` out of service; return their names."""
        with self._write() as s:
            rows = list(s.scalars(select(MachineRow).where(MachineRow.in_service)))
            retired = [r for r in rows if r.name not in keep]
            for row in retired:
                row.in_service = False
            names = [r.name for r in retired]
        self._machine_list = None
        return names

    def set_machine_in_service(self, name: str, in_service: bool) -> MachineInfo | None:
        """Take a whole machine into or out of service (no new jobs are made on a machine
        out of service; jobs on it keep their boards); None if there is no such machine."""
        with self._write() as s:
            row = s.scalar(select(MachineRow).where(MachineRow.name == name))
            if row is None:
                return None
            row.in_service = in_service
            info = _machine(row)
        self._machine_list = None
        return info

    def retag_machine(self, name: str, tags: list[str]) -> MachineInfo | None:
        """Replace a machine's tags; None if there is no such machine."""
        with self._write() as s:
            row = s.scalar(select(MachineRow).where(MachineRow.name == name))
            if row is None:
                return None
            row.tags = json.dumps(tags)
            info = _machine(row)
        self._machine_list = None
        return info

    #: the in-service machines as last read; machine rows change only through this
    #: store's :meth:`sync_machine`, :meth:`retire_machines`,
    #: :meth:`set_machine_in_service` and :meth:`retag_machine`, which forget it
    _machine_list: list[MachineInfo] | None = None

    def machines(self) -> list[MachineInfo]:
        """Return the in-service machines, ordered by name (cached: read on every job
        creation, written only when the service starts)."""
        found = self._machine_list
        if found is None:
            with self._read() as s:
                rows = s.scalars(
                    select(MachineRow).where(MachineRow.in_service).order_by(MachineRow.name)
                )
                found = [_machine(r) for r in rows]
            self._machine_list = found
        return list(found)

    def machine(self, name: str) -> MachineInfo | None:
        """Return the in-service machine called ``name``."""
        with self._read() as s:
            row = s.scalar(select(MachineRow).where(MachineRow.name == name, MachineRow.in_service))
            return None if row is None else _machine(row)

    def machine_by_id(self, machine_id: int) -> MachineInfo | None:
        """Return the machine with this id."""
        with self._read() as s:
            row = s.get(MachineRow, machine_id)
            return None if row is None else _machine(row)

    def boards(self, machine_id: int) -> list[BoardInfo]:
        """Return every board of a machine (a plain column query: this is on hot paths)."""
        with self._read() as s:
            rows = s.execute(select(*BOARD_COLUMNS).where(BoardRow.machine_id == machine_id))
            return [board_from_row(r) for r in rows]

    def board_at(self, machine_id: int, x: int, y: int, z: int) -> BoardInfo | None:
        """Return the board at triad (x, y, z) of a machine."""
        with self._cursor() as cursor:
            rows = fetch(cursor, self.hot.board_at, {"mid": machine_id, "x": x, "y": y, "z": z})
        return board_from_row(rows[0]) if rows else None

    def board(self, board_id: int) -> BoardInfo | None:
        """Return one board by id."""
        with self._read() as s:
            row = s.get(BoardRow, board_id)
            return None if row is None else board_info(row)

    def dead_links(self, machine_id: int) -> list[tuple[BoardInfo, int]]:
        """Return the dead links of a machine as (board, direction) ends."""
        with self._read() as s:
            rows = s.execute(
                select(BoardRow, DeadLinkRow.direction)
                .join(DeadLinkRow, DeadLinkRow.board_id == BoardRow.id)
                .where(DeadLinkRow.machine_id == machine_id)
            )
            return [(board_info(b), int(d)) for b, d in rows]

    def report_board(
        self, board_id: int, job_id: int | None, user_id: int | None, issue: str, threshold: int
    ) -> bool:
        """Record a problem report; return True if the board was taken out of service.

        One report is kept per board, job and reporter (a repeat updates its text), and
        only distinct reporting users count towards ``threshold``: no user alone can take
        a board out of service unless the threshold is 1.
        """
        with self._write() as s:
            same = (
                (BoardReportRow.board_id == board_id)
                & (BoardReportRow.job_id == job_id if job_id is not None
                   else BoardReportRow.job_id.is_(None))
                & (BoardReportRow.reporter_id == user_id if user_id is not None
                   else BoardReportRow.reporter_id.is_(None))
            )  # fmt: skip
            row = s.scalar(select(BoardReportRow).where(same).limit(1))
            if row is None:
                s.add(
                    BoardReportRow(
                        board_id=board_id,
                        job_id=job_id,
                        reporter_id=user_id,
                        issue=issue,
                        time=time.time(),
                    )
                )
            else:
                row.issue, row.time = issue, time.time()
            s.flush()
            count = s.scalar(
                select(func.count(func.distinct(BoardReportRow.reporter_id))).where(
                    BoardReportRow.board_id == board_id
                )
            )
            board = s.get(BoardRow, board_id)
            taken_out = board is not None and board.functioning and int(count or 0) >= threshold
            if taken_out and board is not None:
                board.functioning = False
        if taken_out:
            self.boards_changed()
        return taken_out

    def take_out_of_service(self, board_ids: list[int], job_id: int | None, reason: str) -> None:
        """Mark boards as not functioning, with a report (no reporter) saying why."""
        if not board_ids:
            return
        now = time.time()
        with self._write() as s:
            for board_id in board_ids:
                board = s.get(BoardRow, board_id)
                if board is None:
                    continue
                board.functioning = False
                s.add(
                    BoardReportRow(
                        board_id=board_id, job_id=job_id, reporter_id=None, issue=reason, time=now
                    )
                )
        self.boards_changed()

    def out_of_service_reasons(self, machine_id: int) -> dict[int, str]:
        """Return, per board of the machine that is out of service, its latest report."""
        with self._read() as s:
            rows = s.execute(
                select(BoardReportRow.board_id, BoardReportRow.issue)
                .join(BoardRow, BoardRow.id == BoardReportRow.board_id)
                .where(BoardRow.machine_id == machine_id, BoardRow.functioning.is_(False))
                .order_by(BoardReportRow.time, BoardReportRow.id)
            )
            return {int(board_id): str(issue) for board_id, issue in rows}

    def board_reports(self) -> list[BoardReport]:
        """Return every board report, newest first."""
        return self._board_reports()

    def board_reports_after(self, after_id: int, limit: int) -> list[BoardReport]:
        """Return up to ``limit`` reports with ids above ``after_id``, oldest first."""
        return self._board_reports(after_id, limit)

    def newest_board_report_id(self) -> int:
        """Return the highest board report id (0 when there are none)."""
        with self._read() as s:
            return int(s.scalar(select(func.max(BoardReportRow.id))) or 0)

    def _board_reports(
        self, after_id: int | None = None, limit: int | None = None
    ) -> list[BoardReport]:
        with self._read() as s:
            query = (
                select(
                    BoardReportRow.id, BoardReportRow.board_id, MachineRow.name, BoardRow.x,
                    BoardRow.y, BoardRow.z, BoardReportRow.job_id, UserRow.name,
                    BoardReportRow.issue, BoardReportRow.time, BoardRow.functioning,
                )
                .join(BoardRow, BoardRow.id == BoardReportRow.board_id)
                .join(MachineRow, MachineRow.id == BoardRow.machine_id)
                .outerjoin(UserRow, UserRow.id == BoardReportRow.reporter_id)
            )  # fmt: skip
            if after_id is not None:
                query = query.where(BoardReportRow.id > after_id)
                query = query.order_by(BoardReportRow.id).limit(limit)
            else:
                query = query.order_by(BoardReportRow.time.desc(), BoardReportRow.id.desc())
            rows = s.execute(query).all()
        return [
            BoardReport(
                int(i), int(b), str(m), (int(x), int(y), int(z)), j, u, str(t), float(w), bool(f)
            )
            for i, b, m, x, y, z, j, u, t, w, f in rows
        ]

    def clear_board_reports(self, board_id: int) -> int:
        """Delete the reports of a board (it stays as it is); return how many there were."""
        with self._write() as s:
            result = s.execute(delete(BoardReportRow).where(BoardReportRow.board_id == board_id))
            return int(getattr(result, "rowcount", 0) or 0)
