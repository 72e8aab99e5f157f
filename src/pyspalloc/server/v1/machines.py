"""Machine commands of the v1 protocol: machine list, board positions, where-is."""

from __future__ import annotations

from typing import Any

from pyspalloc.geometry import (
    Chip,
    MachineDefinition,
    Physical,
    Triad,
    allocation_chip_size,
    machine_chip_to_job,
)
from pyspalloc.server.context import ServiceContext
from pyspalloc.server.store import JobInfo, JobState, MachineInfo, UserInfo
from pyspalloc.server.v1.arguments import integer
from pyspalloc.server.v1.codec import V1Error

#: the keyword sets ``where_is`` takes, as the old server
WHERE_IS_FORMS = (
    frozenset({"machine", "x", "y", "z"}),
    frozenset({"machine", "cabinet", "frame", "board"}),
    frozenset({"machine", "chip_x", "chip_y"}),
    frozenset({"job_id", "chip_x", "chip_y"}),
)


class V1Machines:
    """The machine commands (``user`` is the v1 user: its jobs answer job-chip queries)."""

    def __init__(self, ctx: ServiceContext, user: UserInfo) -> None:
        self.ctx = ctx
        self.user = user

    def _machine(self, name: Any) -> tuple[MachineInfo, MachineDefinition] | None:
        if not isinstance(name, str):
            raise V1Error("machine name must be a string")
        info = self.ctx.store.machine(name)
        definition = None if info is None else self.ctx.machines.get(info.name)
        return None if info is None or definition is None else (info, definition)

    def list_machines(self) -> list[dict[str, Any]]:
        """Name, tags, size in triads, dead boards and dead links (old ``Links`` numbers)."""
        store = self.ctx.store
        out = []
        for info in store.machines():
            definition = self.ctx.machines.get(info.name)
            dead = set() if definition is None else {tuple(t) for t in definition.dead_boards}
            dead |= {b.triad for b in store.boards(info.id) if not b.functioning}
            links = sorted((*b.triad, int(d)) for b, d in store.dead_links(info.id))
            out.append(
                {
                    "name": info.name,
                    "tags": list(info.tags),
                    "width": info.width,
                    "height": info.height,
                    "dead_boards": [list(t) for t in sorted(dead)],
                    "dead_links": [list(link) for link in links],
                }
            )
        return out

    def get_board_position(self, machine: Any, x: Any, y: Any, z: Any) -> list[int] | None:
        """Physical ``[cabinet, frame, board]`` of a logical board, or null."""
        found = self._machine(machine)
        triad = Triad(integer(x, "x"), integer(y, "y"), integer(z, "z"))
        board = None if found is None else found[1].board(triad)
        return None if board is None else list(board.physical)

    def get_board_at_position(self, machine: Any, c: Any, f: Any, b: Any) -> list[int] | None:
        """Logical ``[x, y, z]`` of the board in a physical slot, or null."""
        found = self._machine(machine)
        physical = Physical(integer(c, "cabinet"), integer(f, "frame"), integer(b, "board"))
        board = None if found is None else found[1].board_at_physical(physical)
        return None if board is None else list(board.triad)

    # ---- where_is ----------------------------------------------------------------
    def where_is(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """Locate a board or chip (one of :data:`WHERE_IS_FORMS`); null if nothing is there."""
        keys = frozenset(kwargs)
        if keys not in WHERE_IS_FORMS:
            raise V1Error(f"Invalid arguments: {', '.join(sorted(keys))}")
        if "job_id" in keys:
            job_id = integer(kwargs["job_id"], "job_id")
            chip = Chip(integer(kwargs["chip_x"], "chip_x"), integer(kwargs["chip_y"], "chip_y"))
            return self._job_chip(job_id, chip)
        found = self._machine(kwargs["machine"])
        if "chip_x" in keys:
            chip = Chip(integer(kwargs["chip_x"], "chip_x"), integer(kwargs["chip_y"], "chip_y"))
            if found is None:
                return None
            return self._at_chip(*found, chip)
        if "x" in keys:
            triad = Triad(
                integer(kwargs["x"], "x"), integer(kwargs["y"], "y"), integer(kwargs["z"], "z")
            )
            board = None if found is None else found[1].board(triad)
        else:
            physical = Physical(
                integer(kwargs["cabinet"], "cabinet"),
                integer(kwargs["frame"], "frame"),
                integer(kwargs["board"], "board"),
            )
            board = None if found is None else found[1].board_at_physical(physical)
        if found is None or board is None:
            return None
        return self._at_chip(*found, found[1].ethernet_chip(board.triad))

    def _at_chip(
        self, info: MachineInfo, definition: MachineDefinition, chip: Chip
    ) -> dict[str, Any] | None:
        chip = Chip(chip.x % definition.chip_width, chip.y % definition.chip_height)
        board_def = definition.board_at_chip(chip)
        if board_def is None:
            return None
        board = self.ctx.store.board_at(info.id, *board_def.triad)
        job = None
        if board is not None and board.job_id is not None:
            job = self.ctx.store.get_job(board.job_id)
            if job is not None and job.state == JobState.DESTROYED:
                job = None
        return self._result(definition, board_def.triad, chip, job)

    def _job_chip(self, job_id: int, chip: Chip) -> dict[str, Any] | None:
        store = self.ctx.store
        job = store.get_job(job_id)
        if job is None or job.owner_id != self.user.id or job.state == JobState.DESTROYED:
            return None
        name = self.ctx.lifecycle.machine_name(job.machine_id)
        definition = None if name is None else self.ctx.machines.get(name)
        root = None if job.root_id is None else store.board(job.root_id)
        if definition is None or root is None:
            return None
        eth = definition.ethernet_chip(Triad(*root.triad))
        machine_chip = Chip(
            (eth.x + chip.x) % definition.chip_width, (eth.y + chip.y) % definition.chip_height
        )
        board_def = definition.board_at_chip(machine_chip)
        if board_def is None:
            return None
        board = store.board_at(job.machine_id, *board_def.triad)
        if board is None or board.job_id != job.id:
            return None
        return self._result(definition, board_def.triad, machine_chip, job)

    def _result(
        self, definition: MachineDefinition, triad: Triad, chip: Chip, job: JobInfo | None
    ) -> dict[str, Any] | None:
        board = definition.board(triad)
        if board is None:
            return None
        eth = definition.ethernet_chip(triad)
        board_chip = [
            (chip.x - eth.x) % definition.chip_width,
            (chip.y - eth.y) % definition.chip_height,
        ]
        job_chip = None
        if job is not None and job.root_id is not None and job.width and job.height:
            root = self.ctx.store.board(job.root_id)
            if root is not None:
                size = allocation_chip_size(
                    job.width, job.height, job.depth or 3, definition.width, definition.height
                )
                rel = machine_chip_to_job(
                    Triad(*root.triad), chip, definition.width, definition.height
                )
                job_chip = [rel.x % size.x, rel.y % size.y]
        return {
            "machine": definition.name,
            "logical": list(triad),
            "physical": list(board.physical),
            "chip": [chip.x, chip.y],
            "board_chip": board_chip,
            "job_id": None if job is None else job.id,
            "job_chip": job_chip,
        }
