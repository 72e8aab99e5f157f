"""The v1 command table: argument binding, then the job or machine command.

Commands that touch the database run on the listener's worker threads; ``version``,
``login`` and the notification subscriptions are answered on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from pyspalloc.server.v1.arguments import (
    REQUIRED,
    bind,
    integer,
    optional_integer,
    optional_text,
    text,
)
from pyspalloc.server.v1.codec import Request, V1Error
from pyspalloc.server.v1.create import parse_create
from pyspalloc.server.v1.jobs import V1Jobs
from pyspalloc.server.v1.machines import V1Machines
from pyspalloc.server.v1.notifications import MAX_WATCHES, Notifier, Subscriber, Watches, watch

#: commands about one job: short enough to run on the event loop (see V1Options.inline)
SHORT = frozenset(
    {
        "create_job", "job_keepalive", "get_job_state", "get_job_machine_info",
        "power_on_job_boards", "power_off_job_boards", "destroy_job",
    }
)  # fmt: skip

#: the version reported: below 7.0.0, which the old client (7.4.1) refuses (as Java's)
VERSION = "5.0.0"

Params = tuple[tuple[str, Any], ...]
Blocking = Callable[[dict[str, Any], str], Any]

_JOB: Params = (("job_id", REQUIRED),)
_POSITION: Params = (("machine_name", REQUIRED), ("x", REQUIRED), ("y", REQUIRED),
                     ("z", REQUIRED))  # fmt: skip
_REPORT: Params = (("address", REQUIRED), ("x", None), ("y", None), ("p", None),
                   ("description", "It's broken."))  # fmt: skip


@dataclass(frozen=True)
class Pending:
    """A command running on a worker thread: await :attr:`result` for its value."""

    result: Coroutine[Any, Any, Any]


def _job_id(bound: dict[str, Any]) -> int:
    return integer(bound["job_id"], "job_id")


class Commands:
    """Runs decoded requests for one listener."""

    def __init__(
        self,
        jobs: V1Jobs,
        machines: V1Machines,
        notifier: Notifier,
        executor: Executor,
        inline: bool,
        timeout: float,
    ) -> None:
        self.jobs = jobs
        self.machines = machines
        self.notifier = notifier
        self.executor = executor
        self.inline = inline
        self.timeout = timeout
        j, m = jobs, machines
        self._blocking: dict[str, tuple[Params, Blocking]] = {
            "job_keepalive": (_JOB, lambda b, h: j.job_keepalive(_job_id(b), h)),
            "get_job_state": (_JOB, lambda b, h: j.get_job_state(_job_id(b), h)),
            "get_job_machine_info": (_JOB, lambda b, h: j.get_job_machine_info(_job_id(b), h)),
            "power_on_job_boards": (_JOB, lambda b, h: j.set_power(_job_id(b), True, h)),
            "power_off_job_boards": (_JOB, lambda b, h: j.set_power(_job_id(b), False, h)),
            "destroy_job": (
                (("job_id", REQUIRED), ("reason", None)),
                lambda b, h: j.destroy_job(_job_id(b), optional_text(b["reason"], "reason", 1024)),
            ),
            "list_jobs": ((), lambda b, h: j.list_jobs()),
            "list_machines": ((), lambda b, h: m.list_machines()),
            "get_board_position": (
                _POSITION,
                lambda b, h: m.get_board_position(b["machine_name"], b["x"], b["y"], b["z"]),
            ),
            "get_board_at_position": (
                _POSITION,
                lambda b, h: m.get_board_at_position(b["machine_name"], b["x"], b["y"], b["z"]),
            ),
            "report_problem": (
                (
                    ("address", REQUIRED),
                    ("x", None),
                    ("y", None),
                    ("p", None),
                    ("description", "It's broken."),
                ),
                lambda b, h: j.report_problem(
                    text(b["address"], "address", 64).strip(),
                    optional_integer(b["x"], "x", 0, 255),
                    optional_integer(b["y"], "y", 0, 255),
                    optional_integer(b["p"], "p", 0, 17),
                    text(b["description"], "description", 1024),
                ),
            ),
        }

    def start(self, request: Request, subscriber: Subscriber, host: str) -> Any:
        """Answer one request: its result, or a :class:`Pending` for one that runs on a
        worker thread. Raises :class:`V1Error` for the client to see."""
        name, args, kwargs = request.command, request.args, request.kwargs
        if name == "version":
            bind(name, (), args, kwargs)
            return VERSION
        if name == "login":
            raise V1Error("upgrading security is not supported")
        if name in ("notify_job", "no_notify_job"):
            bound = bind(name, (("job_id", None),), args, kwargs)
            job_id = optional_integer(bound["job_id"], "job_id")
            watches = self._watches(subscriber, name == "notify_job" and job_id is not None)
            watches.jobs = watch(watches.jobs, job_id, name == "notify_job")
            self.notifier.update(subscriber)
            return None
        if name in ("notify_machine", "no_notify_machine"):
            bound = bind(name, (("machine_name", None),), args, kwargs)
            machine = optional_text(bound["machine_name"], "machine_name", 128)
            watches = self._watches(subscriber, name == "notify_machine" and machine is not None)
            watches.machines = watch(watches.machines, machine, name == "notify_machine")
            self.notifier.update(subscriber)
            return None
        if name == "create_job":
            config = self.jobs.ctx.config
            call = parse_create(args, kwargs, config.keepalive_min, config.keepalive_max)
            if self.inline:
                return self.jobs.create_job(call, host)
            return self._off_loop(self.jobs.create_job, call, host)
        if name == "where_is":
            if args:
                raise V1Error("where_is() takes keyword arguments only")
            return self._off_loop(self.machines.where_is, kwargs)
        found = self._blocking.get(name)
        if found is None:
            raise V1Error(f"unknown command: {name[:64]!r}")
        params, handler = found
        bound = bind(name, params, args, kwargs)
        if self.inline and name in SHORT:
            return handler(bound, host)
        return self._off_loop(handler, bound, host)

    def _watches(self, subscriber: Subscriber, adding_one: bool) -> Watches:
        watches = self.notifier.watches(subscriber)
        if adding_one and watches.size >= MAX_WATCHES:
            raise V1Error(f"at most {MAX_WATCHES} single watches: watch everything instead")
        return watches

    def _off_loop(self, fn: Callable[..., Any], *args: Any) -> Pending:
        """Run ``fn(*args)`` on a worker thread, within the command timeout."""
        return Pending(self._bounded(fn, *args))

    async def _bounded(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise V1Error("the service is busy: command timed out") from None
