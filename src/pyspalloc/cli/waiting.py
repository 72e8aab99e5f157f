"""Waiting for a job to become READY, with a progress display of its states."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from pyspalloc.cli.errors import EXIT_DESTROYED, CLIError
from pyspalloc.cli.lookup import describe_job
from pyspalloc.cli.views import state_label
from pyspalloc.client import JobDescription, SpallocJob

#: the order of the live job states, for progress displays
STATE_STEPS = {"QUEUED": 1, "POWER": 2, "READY": 3}


def wait_for_ready(
    job: SpallocJob,
    on_state: Callable[[str, float], None],
    timeout: float | None = None,
) -> JobDescription:
    """Poll the job until it is READY, calling ``on_state(state, elapsed)`` on each change.

    Polls (rather than long-polls) so that a change that happens just before a long
    poll starts cannot hold the display back. Returns the job with its boards.

    Raises
    ------
    CLIError
        If the job is destroyed (exit code 1) or ``timeout`` passes.
    """
    started = time.monotonic()
    last: str | None = None
    pause = 0.1
    while True:
        view = describe_job(job, allocation=False)
        elapsed = time.monotonic() - started
        if view.state != last:
            last = view.state
            on_state(view.state, elapsed)
            pause = 0.1
        if view.state == "READY":
            return describe_job(job)
        if view.state == "DESTROYED":
            raise CLIError(
                f"job {view.id} was destroyed: {view.reason or 'no reason given'}", EXIT_DESTROYED
            )
        if timeout is not None and elapsed > timeout:
            raise CLIError(f"job {view.id} is still {view.state} after {timeout:g} s")
        time.sleep(pause)
        pause = min(pause * 1.5, 1.0)


@contextlib.contextmanager
def state_progress(
    job_id: int | None, enabled: bool = True
) -> Iterator[Callable[[str, float], None]]:
    """A rich progress display of a job going QUEUED -> POWER -> READY.

    Yields the ``on_state`` callback for :func:`wait_for_ready`; each change is also
    printed as a line.
    """
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from pyspalloc.cli.output import console

    if not enabled:

        def quiet(state: str, elapsed: float) -> None:
            pass

        yield quiet
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"Job {job_id}", total=3, state="", completed=0)
        shown = [0]

        def on_state(state: str, elapsed: float) -> None:
            step = STATE_STEPS.get(state, 0)
            # a job starts QUEUED: show the states it passed through between two polls
            for name, earlier in STATE_STEPS.items():
                if shown[0] < earlier < step:
                    progress.console.print(f"Job {job_id}: {state_label(name)}  [dim](passed)[/]")
            shown[0] = max(shown[0], step)
            progress.update(task, completed=step, state=state)
            progress.console.print(f"Job {job_id}: {state_label(state)}  [dim]{elapsed:.1f} s[/]")

        yield on_state
