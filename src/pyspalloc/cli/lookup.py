"""Finding what a command names, through the client: jobs and machines, and board maps.

Errors a user can make (no such job, no such machine, no live job to pick) become
:class:`~pyspalloc.cli.errors.CLIError`\\ s with exit code 4.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyspalloc.cli.errors import EXIT_NOT_FOUND, CLIError
from pyspalloc.client import (
    JobAllocation,
    JobDescription,
    SpallocClient,
    SpallocHTTPError,
    SpallocJob,
    SpallocMachine,
)

#: job URL -> allocation read while the job was live (it does not change then)
AllocationCache = dict[str, JobAllocation | None]


def describe_job(
    job: SpallocJob,
    allocation: bool = True,
    power: bool = False,
    cache: AllocationCache | None = None,
) -> JobDescription:
    """Read a job (and its allocation, and power) through the client.

    Reading the allocation or power counts as an access (a keepalive) on the service;
    ``cache`` avoids reading a live job's allocation twice.

    Raises
    ------
    CLIError
        If there is no such job (exit code 4).
    """
    try:
        if cache is None:
            return job.describe(allocation, power)
        view = job.describe(allocation=False, power=power)
        if allocation and view.state != "QUEUED":
            if view.url in cache:
                found = cache[view.url]
            else:
                found = job.get_allocation()
                if view.is_live:
                    cache[view.url] = found
            view = view.with_allocation(found)
        return view
    except SpallocHTTPError as error:
        if error.status == 404:
            raise CLIError(f"no such job: {job.job_id or job.url}", EXIT_NOT_FOUND) from None
        raise


def describe_jobs(
    jobs: list[SpallocJob], allocation: bool = True, cache: AllocationCache | None = None
) -> list[JobDescription]:
    """Read many jobs at once (a few requests in parallel); jobs gone meanwhile are left out."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        views = pool.map(lambda job: _describe_or_none(job, allocation, cache), jobs)
        return [v for v in views if v is not None]


def _describe_or_none(
    job: SpallocJob, allocation: bool, cache: AllocationCache | None
) -> JobDescription | None:
    try:
        return describe_job(job, allocation, cache=cache)
    except CLIError:
        return None  # destroyed and purged between the listing and the read
    except SpallocHTTPError as error:
        if error.status != 403:
            raise
        # a READER may list jobs but not read them
        return JobDescription(id=job.job_id, url=job.url, state="UNKNOWN")


def only_live_job(client: SpallocClient) -> SpallocJob:
    """The user's only live job (for commands whose job ID is optional)."""
    jobs = list(client.list_jobs())
    if len(jobs) == 1:
        return jobs[0]
    if not jobs:
        raise CLIError("you have no live jobs; give a job ID", EXIT_NOT_FOUND)
    ids = ", ".join(str(job.job_id) for job in jobs[:10])
    raise CLIError(f"you have several live jobs ({ids}); give a job ID")


def find_machine(client: SpallocClient, name: str) -> SpallocMachine:
    """The machine called ``name``; :class:`CLIError` (exit code 4) if there is none."""
    machine = client.get_machine(name)
    if machine is None:
        known = ", ".join(sorted(client.list_machines())) or "none"
        raise CLIError(f"no such machine: {name} (known: {known})", EXIT_NOT_FOUND)
    return machine


def all_triads(machine: SpallocMachine) -> list[tuple[int, int, int]]:
    """Every board position of a machine."""
    return [
        (x, y, z) for y in range(machine.height) for x in range(machine.width) for z in range(3)
    ]


def dead_triads(machine: SpallocMachine) -> set[tuple[int, int, int]]:
    """The dead or absent boards of a machine."""
    return {
        (int(b["x"]), int(b["y"]), int(b["z"]))
        for b in machine.dead_boards
        if isinstance(b, dict) and {"x", "y", "z"} <= b.keys()
    }


def board_map(machine: SpallocMachine, spinner: bool = True) -> dict[tuple[int, int, int], Any]:
    """Where-is object of every live board of a machine (None for dead or absent ones).

    This is one lookup per board (the REST API has no bulk query), a few at a time; with
    ``spinner``, a spinner says so on a terminal when the machine is big.
    """
    from pyspalloc.cli.output import console

    if spinner and 3 * machine.width * machine.height > 100 and console.is_terminal:
        with console.status(f"Reading the boards of {machine.name}..."):
            return _board_map(machine)
    return _board_map(machine)


def _board_map(machine: SpallocMachine) -> dict[tuple[int, int, int], Any]:
    dead = dead_triads(machine)
    triads = [t for t in all_triads(machine) if t not in dead]
    result: dict[tuple[int, int, int], Any] = dict.fromkeys(dead)

    def look(t: tuple[int, int, int]) -> dict[str, Any] | None:
        return machine.where_is_logical(*t)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for triad, found in zip(triads, pool.map(look, triads), strict=True):
            result[triad] = found
    return result
