"""What the client-side commands share: options, logging in, errors, job views, waiting.

Everything here goes through the public client API (:mod:`pyspalloc.client`): a
:class:`~pyspalloc.client.SpallocClient` and, for the few REST resources the client has no
method for (power, job chip lookups, keepalive), its :class:`~pyspalloc.client.Session`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import click

from pyspalloc.cli.settings import ServiceSettings
from pyspalloc.client import Session, SpallocClient, SpallocHTTPError, SpallocJob, SpallocMachine
from pyspalloc.exceptions import (
    SpallocException,
    SpinnmanException,
    SpinnmanIOException,
    SpinnmanTimeoutException,
)

F = TypeVar("F", bound=Callable[..., Any])

#: exit codes (the old spalloc's where they exist)
EXIT_ERROR = 1
EXIT_DESTROYED = 1
EXIT_NOT_FOUND = 4
EXIT_INTERRUPTED = 4
EXIT_CONNECTION = 6

#: the order of the live job states, for progress displays
STATE_STEPS = {"QUEUED": 1, "POWER": 2, "READY": 3}


class CLIError(click.ClickException):
    """An expected failure: one line on standard error and a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


def service_options(function: F) -> F:
    """Add ``--url``, ``--user``, ``--password`` and ``--token`` to a command."""
    function = click.option(
        "--token", default=None, help="Bearer token (or SPALLOC_TOKEN) instead of a password."
    )(function)
    function = click.option(
        "--password", default=None, help="Password (or SPALLOC_PASSWORD, or the config file)."
    )(function)
    function = click.option(
        "--user", "-u", "username", default=None, help="User name (or SPALLOC_USER)."
    )(function)
    function = click.option(
        "--url",
        default=None,
        metavar="URL",
        help="Service URL, e.g. http://host:8080/spalloc/ (or SPALLOC_SERVER).",
    )(function)
    return function


def json_option(function: F) -> F:
    """Add ``--json`` (machine-readable output) to a command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def _root_cause(error: BaseException) -> BaseException:
    seen: set[int] = set()
    while error.__cause__ is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__
    return error


def describe_error(error: BaseException, url: str | None = None) -> CLIError:
    """Turn a client exception into a one-line :class:`CLIError`."""
    where = f" {url}" if url else ""
    if isinstance(error, SpallocHTTPError):
        body = " ".join(error.body.split())[:200] or "no details"
        if error.status == 404:
            return CLIError(f"not found: {body}", EXIT_NOT_FOUND)
        if error.status in (401, 403):
            return CLIError(f"refused by the service (HTTP {error.status}): {body}")
        return CLIError(f"the service answered HTTP {error.status}: {body}")
    if isinstance(error, SpinnmanTimeoutException):
        return CLIError(f"timed out: {error}", EXIT_CONNECTION)
    if isinstance(error, SpinnmanIOException):
        cause = _root_cause(error)
        text = str(cause)
        if "Connection refused" in text or isinstance(cause, ConnectionRefusedError):
            return CLIError(f"cannot reach the service{where}: connection refused", EXIT_CONNECTION)
        if "Name or service not known" in text or "getaddrinfo" in text:
            return CLIError(f"cannot reach the service{where}: unknown host", EXIT_CONNECTION)
        found = re.search(r"certificate verify failed: ([^(]*)", str(error))
        if found or "CERTIFICATE_VERIFY_FAILED" in str(error):
            why = found.group(1).strip() if found else "not trusted"
            return CLIError(
                f"cannot verify the certificate of the service{where} ({why}); set "
                "REQUESTS_CA_BUNDLE to the file of the certificate that signed it",
                EXIT_CONNECTION,
            )
        return CLIError(f"cannot talk to the service{where}: {error}", EXIT_CONNECTION)
    if isinstance(error, SpallocException) and str(error).startswith("Unable to login"):
        if re.match(
            r"Unable to login( with the bearer token)?: HTTP (302|303|401|403)\b", str(error)
        ):
            return CLIError(
                f"login to{where} failed: wrong user name, password or token "
                "(or the account is locked or disabled)"
            )
        return CLIError(f"login to{where} failed: {error}")
    if isinstance(error, SpinnmanException):
        return CLIError(str(error) or type(error).__name__)
    return CLIError(f"{type(error).__name__}: {error}")


@contextlib.contextmanager
def client_errors(url: str | None = None) -> Iterator[None]:
    """Turn the client's exceptions raised inside into one-line :class:`CLIError`\\ s."""
    try:
        yield
    except click.ClickException:
        raise
    except (SpinnmanException, OSError) as error:
        raise describe_error(error, url) from None


def connect(
    url: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    machine: str | None = None,
) -> tuple[SpallocClient, ServiceSettings]:
    """Resolve the settings and log in; errors become :class:`CLIError`."""
    settings = ServiceSettings.resolve(url, username, password, token, machine)
    if settings.username is None and settings.token is None and "@" not in settings.url:
        raise CLIError(
            "no credentials: use --user/--password or --token (or SPALLOC_USER, "
            "SPALLOC_PASSWORD, SPALLOC_TOKEN, or the config file)"
        )
    if settings.username is not None and settings.password is None:
        raise CLIError(f"no password for {settings.username}: use --password or SPALLOC_PASSWORD")
    with client_errors(settings.url):
        client = SpallocClient(
            settings.url,
            settings.username,
            settings.password,
            bearer_token=None if settings.username else settings.token,
        )
    return client, settings


# ---------------------------------------------------------------- REST views


def job_id_of(url: str) -> int | None:
    """The numeric id at the end of a job URL."""
    last = url.rstrip("/").rsplit("/", 1)[-1]
    return int(last) if last.isdigit() else None


def job_url(client: SpallocClient, job_id: int | str) -> str:
    """The URL of job ``job_id`` (slash-terminated)."""
    return f"{client.session.srv_url}jobs/{quote(str(job_id), safe='')}/"


def url_of(job: SpallocJob) -> str:
    """The URL of a job handle made by the client."""
    url = getattr(job, "url", None)
    if not isinstance(url, str):
        raise CLIError("this client does not expose job URLs")
    return url if url.endswith("/") else url + "/"


def machine_url(client: SpallocClient, machine: str) -> str:
    """The URL of machine ``machine`` (slash-terminated)."""
    return f"{client.session.srv_url}machines/{quote(machine, safe='')}/"


def get_json(session: Session, url: str, **query: Any) -> dict[str, Any] | None:
    """GET a JSON object; ``None`` for 204 (nothing) or 404 (no such thing)."""
    try:
        reply = session.get(url, **query)
    except SpallocHTTPError as error:
        if error.status == 404:
            return None
        raise
    if reply.status_code == 204 or not reply.content:
        return None
    value = reply.json()
    return value if isinstance(value, dict) else None


def parse_time(text: object) -> datetime | None:
    """Parse an ISO-8601 timestamp from the service."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def age(text: object) -> str | None:
    """How long ago a service timestamp was, e.g. ``3m05s``."""
    when = parse_time(text)
    if when is None:
        return None
    seconds = max(0, int((datetime.now(UTC) - when).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours >= 48:
        return f"{hours // 24}d{hours % 24:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


@dataclass
class JobView:
    """A job's state and allocation, as the service reports them."""

    id: int | None
    url: str
    state: str
    owner: str | None = None
    start_time: str | None = None
    finish_time: str | None = None
    keepalive_host: str | None = None
    keepalive_time: str | None = None
    reason: str | None = None
    request: dict[str, Any] | None = None
    machine: str | None = None
    width: int | None = None
    height: int | None = None
    depth: int | None = None
    #: (job-relative Ethernet chip x, y, hostname)
    connections: list[tuple[int, int, str]] = field(default_factory=list)
    #: triad coordinates of the boards, in the order of ``connections``
    triads: list[tuple[int, int, int]] = field(default_factory=list)
    power: str | None = None

    @property
    def num_boards(self) -> int:
        """How many boards the job holds."""
        return len(self.triads) or len(self.connections)

    def to_json(self) -> dict[str, Any]:
        """The JSON form printed by ``--json``."""
        return {
            "id": self.id,
            "url": self.url,
            "state": self.state,
            "owner": self.owner,
            "start_time": self.start_time,
            "finish_time": self.finish_time,
            "keepalive_host": self.keepalive_host,
            "keepalive_time": self.keepalive_time,
            "reason": self.reason,
            "request": self.request,
            "machine": self.machine,
            "width": self.width,
            "height": self.height,
            "depth": self.depth,
            "num_boards": self.num_boards,
            "boards": [list(t) for t in self.triads],
            "connections": [{"x": x, "y": y, "hostname": h} for x, y, h in self.connections],
            "power": self.power,
        }


def fetch_job(
    session: Session,
    url: str,
    allocation: bool = True,
    power: bool = False,
    cache: dict[str, dict[str, Any] | None] | None = None,
) -> JobView:
    """Read a job's state (and allocation, and power) into a :class:`JobView`.

    Reading the allocation or power counts as an access (a keepalive) on the service;
    ``cache`` (job URL -> allocation) avoids reading a live job's allocation twice.

    Raises
    ------
    CLIError
        If there is no such job (exit code 4).
    """
    state = get_json(session, url)
    if state is None:
        raise CLIError(f"no such job: {job_id_of(url) or url}", EXIT_NOT_FOUND)
    request = state.get("original-request")
    view = JobView(
        id=job_id_of(url),
        url=url,
        state=str(state.get("state", "UNKNOWN")),
        owner=state.get("owner"),
        start_time=state.get("start-time"),
        finish_time=state.get("finish-time"),
        keepalive_host=state.get("keepalive-host"),
        keepalive_time=state.get("keep-alive-time"),
        reason=state.get("reason"),
        request=request if isinstance(request, dict) else None,
    )
    if allocation and view.state != "QUEUED":
        if cache is not None and url in cache:
            found = cache[url]
        else:
            found = get_json(session, url + "machine")
            if cache is not None and view.state in ("POWER", "READY"):
                cache[url] = found  # an allocation does not change while the job lives
        if found is not None:
            view.machine = found.get("machine-name") or None
            view.width = found.get("width")
            view.height = found.get("height")
            view.depth = found.get("depth")
            view.connections = [
                (int(xy[0]), int(xy[1]), str(host)) for xy, host in found.get("connections") or ()
            ]
            view.triads = [(int(t[0]), int(t[1]), int(t[2])) for t in found.get("boards") or ()]
    if power and view.state in ("POWER", "READY"):
        found = get_json(session, url + "machine/power")
        if found is not None:
            view.power = str(found.get("power"))
    return view


def list_job_urls(client: SpallocClient, deleted: bool = False) -> list[str]:
    """The URLs of the jobs the user may see, newest first."""
    return [url_of(job) for job in client.list_jobs(deleted=deleted)]


def fetch_jobs(
    client: SpallocClient,
    urls: list[str],
    allocation: bool = True,
    cache: dict[str, dict[str, Any] | None] | None = None,
) -> list[JobView]:
    """Read many jobs at once (a few requests in parallel)."""
    if not urls:
        return []
    session = client.session
    with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
        views = pool.map(lambda u: _fetch_or_none(session, u, allocation, cache), urls)
        return [v for v in views if v is not None]


def _fetch_or_none(
    session: Session,
    url: str,
    allocation: bool,
    cache: dict[str, dict[str, Any] | None] | None,
) -> JobView | None:
    try:
        return fetch_job(session, url, allocation, cache=cache)
    except CLIError:
        return None  # destroyed and purged between the listing and the read
    except SpallocHTTPError as error:
        if error.status != 403:
            raise
        # a READER may list jobs but not read them
        return JobView(id=job_id_of(url), url=url, state="UNKNOWN")


def only_live_job(client: SpallocClient) -> str:
    """The URL of the user's only live job (for commands whose job ID is optional)."""
    urls = list_job_urls(client)
    if len(urls) == 1:
        return urls[0]
    if not urls:
        raise CLIError("you have no live jobs; give a job ID", EXIT_NOT_FOUND)
    ids = ", ".join(str(job_id_of(u)) for u in urls[:10])
    raise CLIError(f"you have several live jobs ({ids}); give a job ID")


# ---------------------------------------------------------------- machines


def find_machine(client: SpallocClient, name: str) -> SpallocMachine:
    """The machine called ``name``; :class:`CLIError` (exit code 4) if there is none."""
    machines = client.list_machines()
    if name not in machines:
        known = ", ".join(sorted(machines)) or "none"
        raise CLIError(f"no such machine: {name} (known: {known})", EXIT_NOT_FOUND)
    return machines[name]


def where_is(client: SpallocClient, machine: str, kind: str, **query: Any) -> dict[str, Any] | None:
    """A machine where-is lookup (``logical-board``, ``physical-board``, ``chip`` or
    ``board-ip``); ``None`` if nothing is there."""
    return get_json(client.session, machine_url(client, machine) + kind, **query)


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


def board_map(
    client: SpallocClient, machine: SpallocMachine, spinner: bool = True
) -> dict[tuple[int, int, int], Any]:
    """Where-is object of every live board of a machine (None for dead or absent ones).

    This is one lookup per board (the REST API has no bulk query), a few at a time; with
    ``spinner``, a spinner says so on a terminal when the machine is big.
    """
    from pyspalloc.cli.output import console

    if spinner and 3 * machine.width * machine.height > 100 and console.is_terminal:
        with console.status(f"Reading the boards of {machine.name}..."):
            return _board_map(client, machine)
    return _board_map(client, machine)


def _board_map(client: SpallocClient, machine: SpallocMachine) -> dict[tuple[int, int, int], Any]:
    dead = dead_triads(machine)
    triads = [t for t in all_triads(machine) if t not in dead]
    result: dict[tuple[int, int, int], Any] = dict.fromkeys(dead)
    session = client.session
    url = machine_url(client, machine.name) + "logical-board"

    def look(t: tuple[int, int, int]) -> dict[str, Any] | None:
        return get_json(session, url, x=t[0], y=t[1], z=t[2])

    with ThreadPoolExecutor(max_workers=4) as pool:
        for triad, found in zip(triads, pool.map(look, triads), strict=True):
            result[triad] = found
    return result


# ---------------------------------------------------------------- waiting


def wait_for_ready(
    session: Session,
    url: str,
    on_state: Callable[[str, float], None],
    timeout: float | None = None,
) -> JobView:
    """Poll the job until it is READY, calling ``on_state(state, elapsed)`` on each change.

    Polls (rather than long-polls) so that a change that happens just before a long
    poll starts cannot hold the display back.

    Raises
    ------
    CLIError
        If the job is destroyed (exit code 1) or ``timeout`` passes.
    """
    started = time.monotonic()
    last: str | None = None
    pause = 0.1
    while True:
        view = fetch_job(session, url, allocation=False)
        elapsed = time.monotonic() - started
        if view.state != last:
            last = view.state
            on_state(view.state, elapsed)
            pause = 0.1
        if view.state == "READY":
            return fetch_job(session, url)
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


def state_label(state: str) -> str:
    """A coloured, explained job state."""
    return {
        "QUEUED": "[yellow]QUEUED[/] (waiting for boards)",
        "POWER": "[cyan]POWER[/] (powering the boards)",
        "READY": "[bold green]READY[/]",
        "DESTROYED": "[red]DESTROYED[/]",
    }.get(state, state)


def set_power(session: Session, url: str, on: bool) -> None:
    """Ask the service to power a job's boards on or off."""
    session.post(url + "machine/power", {"power": "ON" if on else "OFF"})


def keepalive(session: Session, url: str) -> None:
    """Send one keepalive for a job."""
    session.put(url + "keepalive", "alive")


def connection_rows(view: JobView) -> list[list[Any]]:
    """Rows of a connections table: job chip, hostname and triad of each board."""
    triads: list[tuple[int, int, int] | None] = list(view.triads)
    triads += [None] * (len(view.connections) - len(triads))
    return [
        [f"{x}, {y}", host, None if t is None else ", ".join(map(str, t))]
        for (x, y, host), t in zip(view.connections, triads, strict=False)
    ]
