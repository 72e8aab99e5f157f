"""The same user programs, once with spinnman.spalloc imports and once with pyspalloc's.

The programs in ``tests/interop/programs/`` are written against the seed API
(``spinnman.spalloc``, ``/work/shared/spec/client-api.txt``). Each test starts one service
(HTTPS with a test CA, because spinnman forces ``https``) over virtual boards, runs one
program in our environment as it is (``from pyspalloc import ...``) and in the spinnman
1!7.3.0 venv with its import line swapped for spinnman's, and compares the JSON results
field by field. Every difference must be one of :data:`KNOWN_DIFFERENCES` (spinnman's
own bugs, see ``docs/compatibility.md``), and our results are also checked on their own.
"""

from __future__ import annotations

import inspect
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.geometry import MachineDefinition, Triad, builtin_machine
from pyspalloc.geometry.json_format import dump_machine_definitions
from pyspalloc.server.bmp_control import BMPControlOptions, BMPMachineController
from pyspalloc.transceiver.boot import boot_image
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.eieio import EIEIODataMessage, EIEIOType
from tests.support.addresses import free_virtual_base
from tests.support.certificates import make_test_ca

pytestmark = [pytest.mark.interop, pytest.mark.slow]
#: the database is not what these test: SQLite only, whatever else is configured
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PROGRAMS = Path(__file__).parent / "programs"
#: the one line that differs between the two runs of a program
MARKER = "from pyspalloc import SpallocClient, SpallocState  # IMPORTS"
#: what replaces it for spinnman: its imports, and the configuration spinnman needs
#: before it can make a transceiver (``[Machine] version = 5``)
SPINNMAN_IMPORTS = """\
from spinnman.config_setup import unittest_setup
unittest_setup()
from spinn_utilities.config_holder import set_config
set_config("Machine", "version", "5")
from spinnman.spalloc import SpallocClient, SpallocState"""
SPINNMAN = ("spinnman==1!7.3.0", "packaging")
#: the later spinnman, for the programs that use its additions
SPINNMAN_741 = ("spinnman==1!7.4.1", "packaging")

# the service boots jobs' boards with our synthetic image (boots virtual boards only)
FAST = BMPControlOptions(
    retry_delay=0.1, power_timeout=2.0, boot_timeout=15.0, boot_image=boot_image()
)
#: the board of spin24 that is defined dead (physical (0, 0, 23))
DEAD = Triad(3, 1, 2)
#: the board asked for by IP address (physical (0, 0, 10))
BY_IP = Triad(3, 0, 1)
KEYS = [0x1234, 0xBEEF0001, 0xCAFE0002]
BOUND_KEYS = [7, 8, 0xFFFFFFFF]


def _value_error(name: str) -> dict[str, Any]:
    return {"error": name, "is_value_error": True}


#: program -> {field path: (spinnman 7.3.0's value or a check of it, ours, why)}.
#: Every one of these is a row of the table in docs/compatibility.md.
KNOWN_DIFFERENCES: dict[str, dict[str, tuple[Any, Any, str]]] = {
    "jobs": {
        "threads_started_by_list_jobs": (
            lambda n: n >= 6,
            0,
            "spinnman starts an endless keepalive thread for every listed job",
        ),
        "threads_started_by_get_job": (
            1,
            0,
            "spinnman starts an endless keepalive thread for a job it only looks at",
        ),
        "impossible_request.error": (
            "ValueError",
            "SpallocHTTPError",
            "ours is a SpallocException and a ValueError",
        ),
        "bad_board.error": (
            "ValueError",
            "SpallocHTTPError",
            "ours is a SpallocException and a ValueError",
        ),
    },
    "eieio": {
        "local_port_set": (
            False,
            True,
            "spinnman's unbound listener resets the address and port the proxy gave it "
            "(its __init__ sets them to None after the OPEN_UNBOUND call), so it reports 0",
        ),
        "local_ip": (
            "0.0.0.0",
            "127.0.0.1",
            "as local_port: spinnman forgets the address the proxy gave",
        ),
    },
    "bearer": {
        "after_loss.get_state": (
            {"error": "ValueError"},
            {"value": "READY"},
            "spinnman's GETs send the session cookie only, not the bearer token, and it "
            "never renews the session",
        ),
        "after_loss.list_machines": (
            {"error": "ValueError"},
            {"value": ["solo", "spin24"]},
            "as get_state: GETs without the token fail once the session is gone",
        ),
    },
    "plain_http": {
        "list_machines": (
            lambda v: "error" in v,
            {"value": ["spin24"]},
            "spinnman forces https on every URL the service gives (machines-ref, jobs-ref)",
        ),
        "create_job": (
            lambda v: "error" in v,
            {"value": "DESTROYED"},
            "spinnman forces https on every URL the service gives",
        ),
    },
    "waits": {
        "wait_until_ready(timeout=3).error": (
            "ReadTimeout",
            "SpinnmanTimeoutException",
            "spinnman's timeout is the HTTP read timeout of each long poll (requests raises); "
            "ours is a deadline for the whole wait",
        ),
        "wait_for_state_change(QUEUED, timeout=3)": (
            {"error": "ReadTimeout", "took_under_10s": True},
            {"value": "QUEUED", "took_under_10s": True},
            "ours returns the state when the time is up, as documented",
        ),
    },
    "additions": {
        "repr.has_root": (
            False,
            True,
            "spinnman 1!7.4.1's repr() shows the job URL only; its master branch adds the "
            "root host, as ours does",
        ),
    },
    "session": {
        "list_machines": (
            _value_error("ValueError"),
            {"value": ["solo", "spin24"]},
            "spinnman never renews a session (its renew-on-401 is dead code)",
        ),
        "create_job": (
            _value_error("ValueError"),
            {"value": "DESTROYED"},
            "spinnman never renews a session, so writes fail CSRF (403)",
        ),
    },
}


#: program -> fields whose value depends on which free board the allocator chose (the two
#: runs follow each other, so the boards rested longest differ): compared by shape only
ALLOCATION_DEPENDENT: dict[str, list[str]] = {
    "jobs": ["jobs.create_job(1).where_0_0", "jobs.create_job_rect(1, 1).where_0_0"],
}


# ---------------------------------------------------------------- the service


def _machines(base: str, solo_base: str) -> list[MachineDefinition]:
    big = builtin_machine("spin24", base, tags=("default", "interop"))
    boards = dict(big.boards)
    boards[DEAD] = replace(boards[DEAD], functioning=False)
    big = MachineDefinition(
        big.name, big.tags, big.width, big.height, boards, big.dead_links, big.bmp_ips
    )
    solo = builtin_machine("spin5", solo_base, machine_name="solo", tags=("small",))
    return [big, solo]


class Setup:
    """A running service over two virtual machines, and how to run programs on it."""

    def __init__(self, service: Any, ca: Path | None, machines: dict[str, MachineDefinition],
                 vms: dict[str, VirtualMachine], workdir: Path) -> None:  # fmt: skip
        self.service = service
        self.ca = ca
        self.machines = machines
        self.vms = vms
        self.workdir = workdir

    @property
    def args(self) -> list[str]:
        return [self.service.url, "alice", "alice-pw-1"]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPALLOC_")}
        if self.ca is not None:
            env["REQUESTS_CA_BUNDLE"] = str(self.ca)
            env["WEBSOCKET_CLIENT_CA_BUNDLE"] = str(self.ca)
            env.pop("SSL_CERT_FILE", None)
        return env


@pytest.fixture
def setup(make_service: Callable[..., Any], tmp_path: Path) -> Iterator[Setup]:
    base = free_virtual_base()
    solo_base = free_virtual_base()
    while solo_base == base:
        solo_base = free_virtual_base()
    machines = _machines(base, solo_base)
    path = tmp_path / "machines.json"
    path.write_text(json.dumps(dump_machine_definitions(machines)))
    ca, cert, key = make_test_ca(tmp_path)
    with VirtualMachine(machines[0]) as big, VirtualMachine(machines[1]) as solo:
        service = make_service(
            machines=[str(path)],
            tls_cert=cert,
            tls_key=key,
            instant_controller=BMPMachineController(FAST),
        )
        assert service.url.startswith("https://")
        yield Setup(
            service,
            ca,
            {m.name: m for m in machines},
            {"spin24": big, "solo": solo},
            tmp_path,
        )


# ---------------------------------------------------------------- running programs


def program_text(name: str, flavour: str) -> str:
    """The program's source with the imports of ``flavour`` (``pyspalloc``/``spinnman``)."""
    text = (PROGRAMS / f"{name}.py").read_text()
    assert text.count(MARKER) == 1, f"{name}.py must have exactly one import line {MARKER!r}"
    return text if flavour == "pyspalloc" else text.replace(MARKER, SPINNMAN_IMPORTS)


def run_program(
    python: Path | str,
    name: str,
    flavour: str,
    setup: Setup,
    extra: list[str] = (),  # type: ignore[assignment]
    on_checkpoint: Callable[[Any], None] | None = None,
    timeout: float = 300.0,
) -> tuple[dict[str, Any], dict[str, Any], int | None]:
    """Run a program; answer its checkpoints; return (result, types, exit code or None)."""
    script = setup.workdir / f"{name}_{flavour}.py"
    script.write_text(program_text(name, flavour))
    process = subprocess.Popen(
        [str(python), "-u", str(script), *setup.args, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=setup.env(),
        cwd=setup.workdir,
    )
    assert process.stdout is not None and process.stdin is not None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if not ready:
                continue
            line = process.stdout.readline()
            if not line:
                break
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            if "checkpoint" in message:
                assert on_checkpoint is not None, f"{name} stopped at {message}"
                on_checkpoint(message["checkpoint"])
                process.stdin.write("\n")
                process.stdin.flush()
            elif "result" in message:
                try:
                    code: int | None = process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    code = None  # it hangs on exit (left-over non-daemon threads)
                return message["result"], message["types"], code
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(f"{flavour} run of {name} gave no result; stderr:\n{err[-6000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}." if prefix or key else prefix))
        return out
    return {prefix.rstrip("."): value}


def _at(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for key in path.split("."):
        value = value.get(key, "<missing>") if isinstance(value, dict) else "<missing>"
    return value


def _board_coordinates(value: Any) -> Any:
    ok = isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value)
    return "<3 board coordinates>" if ok else value


def normalised(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` flattened, with values that depend on the allocation replaced by shapes."""
    flat = flatten(result)
    for path in ALLOCATION_DEPENDENT.get(name, ()):
        flat[path] = _board_coordinates(flat.get(path))
    return flat


def _explained(path: str, known: dict[str, Any]) -> bool:
    return any(path == k or path.startswith(k + ".") for k in known)


def compare(name: str, spinnman: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Compare field by field; every difference must be a known one. Returns the diffs."""
    theirs_flat, ours_flat = normalised(name, spinnman), normalised(name, ours)
    known = KNOWN_DIFFERENCES.get(name, {})
    differences = {}
    for path in sorted(set(theirs_flat) | set(ours_flat)):
        a, b = theirs_flat.get(path, "<missing>"), ours_flat.get(path, "<missing>")
        if a != b:
            differences[path] = (a, b)
    unexplained = {p: d for p, d in differences.items() if not _explained(p, known)}
    assert not unexplained, f"{name}: spinnman vs pyspalloc differ in {unexplained}"
    for path, (expect_theirs, expect_ours, why) in known.items():
        a, b = _at(spinnman, path), _at(ours, path)
        check = expect_theirs if callable(expect_theirs) else (lambda v, e=expect_theirs: v == e)
        assert check(a), f"{name}.{path}: spinnman gave {a!r} ({why})"
        assert b == expect_ours, f"{name}.{path}: pyspalloc gave {b!r}, expected {expect_ours!r}"
    return differences


def run_both(
    interop_python: Callable[..., Path],
    name: str,
    setup: Setup,
    extra: list[str] = (),  # type: ignore[assignment]
    on_checkpoint: Callable[[Any], None] | None = None,
    spinnman_requirements: tuple[str, ...] = SPINNMAN,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``name`` with our imports, then spinnman's; compare; return (ours, theirs)."""
    spinnman = interop_python(*spinnman_requirements)
    ours, our_types, code = run_program(
        sys.executable, name, "pyspalloc", setup, extra, on_checkpoint
    )
    assert code == 0, f"our run of {name} did not exit cleanly"
    theirs, their_types, _ = run_program(spinnman, name, "spinnman", setup, extra, on_checkpoint)
    differences = compare(name, theirs, ours)
    print(f"{name}: types spinnman {their_types} / pyspalloc {our_types}")
    print(f"{name}: known differences {differences}")
    return ours, theirs


# ---------------------------------------------------------------- the tests


@SQLITE
def test_machines(interop_python: Callable[..., Path], setup: Setup) -> None:
    ours, _ = run_both(interop_python, "machines", setup)
    assert ours["version"] == "7.4.2"
    assert ours["states"] == {
        "UNKNOWN": 0, "QUEUED": 1, "POWER": 2, "READY": 3, "DESTROYED": 4
    }  # fmt: skip
    assert ours["machine_names"] == ["solo", "spin24"]
    spin24, solo = ours["machines"]["spin24"], ours["machines"]["solo"]
    assert spin24["tags"] == ["default", "interop"]
    assert (spin24["width"], spin24["height"], spin24["area"]) == (4, 2, [4, 2])
    assert len(spin24["dead_boards"]) == 1
    dead = spin24["dead_boards"][0]
    assert (dead["x"], dead["y"], dead["z"]) == tuple(DEAD), dead
    assert (dead["cabinet"], dead["frame"], dead["board"]) == (0, 0, 23), dead
    assert spin24["dead_links"] == 0
    assert solo["tags"] == ["small"]
    assert (solo["width"], solo["height"]) == (1, 1)
    # a one-board machine is a triad with two boards missing
    assert [(b["x"], b["y"], b["z"]) for b in solo["dead_boards"]] == [(0, 0, 1), (0, 0, 2)]


@SQLITE
def test_jobs(interop_python: Callable[..., Path], setup: Setup) -> None:
    params = {"ip": setup.machines["spin24"].boards[BY_IP].ip, "machine": "spin24"}
    ours, _ = run_both(interop_python, "jobs", setup, [json.dumps(params)])
    jobs = ours["jobs"]
    boards = {name: job["boards"] for name, job in jobs.items()}
    assert boards == {
        "create_job_board(triad)": 1,
        "create_job_board(physical)": 1,
        "create_job_board(ip_address)": 1,
        "create_job_rect_at_board": 3,
        "create_job(1)": 1,
        "create_job_rect(1, 1)": 3,
    }
    for name, job in jobs.items():
        assert job["state"] == "READY", name
        assert job["root_host_is_0_0"] and job["root_is_job_board"], name
        assert job["where_outside"] is None, name
        assert job["board_chips"][0] == [0, 0], name
    assert jobs["create_job_rect(1, 1)"]["board_chips"] == [[0, 0], [4, 8], [8, 4]]
    assert jobs["create_job_board(triad)"]["where_0_0"] == [0, 0, 5]
    assert jobs["create_job_board(physical)"]["where_0_0"] == [0, 0, 7]
    assert jobs["create_job_board(ip_address)"]["where_0_0"] == [0, 0, 10]
    assert jobs["create_job_rect_at_board"]["where_0_0"] == [0, 0, 18]
    assert ours["specific_roots"]["ip"] == params["ip"]
    assert ours["specific_roots"]["triad"] == setup.machines["spin24"].boards[Triad(1, 0, 2)].ip
    assert all(ours["list_jobs_has_ours"].values())
    assert ours["get_job_state"] == "READY"
    assert ours["get_job_connections_same"] and ours["get_job_where_same"]
    assert ours["impossible_request"] == _value_error("SpallocHTTPError")
    assert ours["bad_board"] == _value_error("SpallocHTTPError")
    assert set(ours["final_state"].values()) == {"DESTROYED"}
    destroyed = ours["destroyed"]
    assert destroyed["get_job_state"] == "DESTROYED"
    assert destroyed["connections"] == {"value": []}
    assert destroyed["root_host"] == {"value": None}
    assert destroyed["where_0_0"] == {"value": None}
    assert destroyed["wait_until_ready"]["error"] == "SpallocException"
    assert destroyed["wait_for_state_change"] == {"value": "DESTROYED"}
    assert destroyed["create_transceiver"]["error"] == "SpallocException"
    assert not any(ours["listed_after_destroy"].values())
    assert all(ours["listed_with_deleted"].values())


@SQLITE
def test_transceiver(interop_python: Callable[..., Path], setup: Setup) -> None:
    ours, _ = run_both(interop_python, "transceiver", setup)
    assert ours["state"] == "READY"
    assert ours["machine"] == {"n_chips": 48, "width": 8, "height": 8}
    assert ours["write_returns"] == [100_000, 0]
    assert ours["read_back_same"] is True
    assert ours["other_chip"] == "chip 3,5 says hi"
    assert ["COOKIE", "JSESSIONID"] in ours["credential_keys"]
    assert ["HEADER", "<csrf header>"] in ours["credential_keys"]
    assert ours["service_uri"] is True
    assert ours["job_uri"] == "URL/srv/spalloc/jobs/N/"
    assert ours["reopened_state"] == "READY" and ours["reopened_connections_same"]
    assert ours["final_state"] == "DESTROYED"


@SQLITE
def test_eieio_listener(interop_python: Callable[..., Path], setup: Setup) -> None:
    def send(checkpoint: dict[str, Any]) -> None:
        board = setup.vms["spin24"].board_by_ip(checkpoint["root_host"])
        assert board is not None and board.booted
        for keys, tag in (
            (KEYS, checkpoint["tags"]["listener"]),
            (BOUND_KEYS, checkpoint["tags"]["bound"]),
        ):
            packet = EIEIODataMessage(EIEIOType.KEY_32, tuple(keys)).to_bytes()
            board.send_from_core(0, 0, 1, tag, packet)

    ours, _ = run_both(interop_python, "eieio", setup, on_checkpoint=send)
    assert ours == {
        "local_port_set": True,
        "local_ip": "127.0.0.1",
        "message_api": "is_next_element/next_element",
        "keys": KEYS,
        "bound_keys": BOUND_KEYS,
        "final_state": "DESTROYED",
    }


@SQLITE
def test_waits(interop_python: Callable[..., Path], setup: Setup) -> None:
    ours, _ = run_both(interop_python, "waits", setup)
    assert ours == {
        "queued_state": "QUEUED",
        "wait_until_ready(timeout=3)": {
            "error": "SpinnmanTimeoutException",
            "took_under_10s": True,
        },
        "wait_for_state_change(QUEUED, timeout=3)": {"value": "QUEUED", "took_under_10s": True},
        "after_blocker_destroyed": {"value": "READY", "took_under_10s": True},
        "state": "READY",
    }


@SQLITE
def test_session_loss(interop_python: Callable[..., Path], setup: Setup) -> None:
    def forget_sessions(_: object) -> None:
        assert setup.service.app.state.ctx.store.purge_sessions(-1.0) >= 1

    ours, theirs = run_both(interop_python, "session", setup, on_checkpoint=forget_sessions)
    assert ours["before"] == theirs["before"] == {"value": ["solo", "spin24"]}


@SQLITE
def test_bearer_token(interop_python: Callable[..., Path], setup: Setup) -> None:
    ctx = setup.service.app.state.ctx
    token = ctx.auth.issue_token(ctx.store.get_user("alice"))

    def forget_sessions(_: object) -> None:
        assert ctx.store.purge_sessions(-1.0) >= 1

    ours, _ = run_both(interop_python, "bearer", setup, [token], forget_sessions)
    assert ours == {
        "machines": ["solo", "spin24"],
        "boards": 1,
        "state": "READY",
        "after_loss": {
            "get_state": {"value": "READY"},
            "list_machines": {"value": ["solo", "spin24"]},
            "destroy": {"value": "done"},
        },
        "final_state_seen_by_new_client": "DESTROYED",
    }


@SQLITE
def test_plain_http(
    interop_python: Callable[..., Path], make_service: Callable[..., Any], tmp_path: Path
) -> None:
    """A service reached by ``http://`` (as behind a TLS-terminating proxy, or in tests)."""
    service = make_service()  # plain HTTP, instant power
    assert service.url.startswith("http://")
    plain = Setup(service, None, {}, {}, tmp_path)
    ours, theirs = run_both(interop_python, "plain_http", plain)
    assert ours["login"] == theirs["login"] == {"value": "ok"}


@SQLITE
def test_spinnman_741_additions(interop_python: Callable[..., Path], setup: Setup) -> None:
    """A program using what spinnman 1!7.4.1 added runs the same on it and on ours."""
    ours, _ = run_both(interop_python, "additions", setup, spinnman_requirements=SPINNMAN_741)
    assert ours == {
        "repr": {"has_url": True, "has_root": True},
        "wanted_state": "QUEUED",
        "busy_board": {"error": "SpallocBoardUnavailableException", "is_spalloc": True},
        "gave_up_within_10_to_40_s": True,
        "destroy_twice": [{"value": "no error"}, {"value": "no error"}],
        "wanted_final": "DESTROYED",
        "final_state": "DESTROYED",
    }


def test_every_program_and_difference_is_documented() -> None:
    """docs/compatibility.md names every program and every known difference's program."""
    docs = (Path(__file__).parents[2] / "docs" / "compatibility.md").read_text()
    programs = sorted(p.name for p in PROGRAMS.glob("*.py") if p.name != "__init__.py")
    assert programs, "no programs found"
    for name in programs:
        assert f"`{name}`" in docs, f"docs/compatibility.md does not describe {name}"
    for name in KNOWN_DIFFERENCES:
        assert (PROGRAMS / f"{name}.py").is_file(), name


# ---------------------------------------------------------------- the stubs are right


def describe_members(obj: Any, members: list[str]) -> dict[str, Any]:
    """Signatures and kinds of ``obj``'s members, as JSON (runs in the spinnman venv too)."""
    import inspect as _inspect

    def signature(function: Any) -> list[Any]:
        return [
            [p.name, p.kind.name, None if p.default is p.empty else repr(p.default)]
            for p in _inspect.signature(function).parameters.values()
        ]

    if _inspect.isfunction(obj):
        return {"": signature(obj)}
    out: dict[str, Any] = {}
    for name in members:
        static = _inspect.getattr_static(obj, name, None)
        if static is None:
            out[name] = "missing"
        elif isinstance(static, property) or _inspect.isdatadescriptor(static):
            out[name] = "property"  # or a slot: an attribute either way
        elif isinstance(static, staticmethod):
            out[name] = ["static", *signature(static.__func__)]
        elif isinstance(getattr(obj, name), int):
            out[name] = int(getattr(obj, name))
        else:
            out[name] = signature(getattr(obj, name))
    return out


def describe_in_venv(python: Path, tmp_path: Path, body: str, wanted: dict[str, Any]) -> Any:
    """Run ``body`` in the spinnman venv of ``python`` after spinnman's test set-up and
    :func:`describe_members`, with ``wanted`` (JSON) in ``sys.argv[1]``; return the JSON
    its last line prints."""
    script = (
        "from __future__ import annotations\nimport importlib, json, sys\n"
        "from spinnman.config_setup import unittest_setup\n"
        "unittest_setup()\n" + inspect.getsource(describe_members) + body
    )
    path = tmp_path / "describe.py"
    path.write_text(script)
    done = subprocess.run(
        [str(python), str(path), json.dumps(wanted)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


#: spinnman version -> seed names and members documented in client-api.txt that it does
#: not have (the documentation is of a later spinnman than 7.3.0; 7.3.0's
#: create_transceiver() returns a plain Version5Transceiver)
NOT_IN: dict[str, tuple[set[str], set[str]]] = {
    "1!7.3.0": (
        {"spalloc_transceiver.SpallocTransceiver"},
        {
            "SpallocJob.read_data",
            "SpallocJob.write_data",
            "SpallocJob.reset_routing",
            "session.Session.credentials",
            "session.Session.post_raw",
            "session.Session.purge",
            "session.Session.service_url",
        },
    ),
    # (1!7.4.x is not the seed: its create_job() takes the request from configuration and
    # create_job_board and friends are gone)
}


@pytest.mark.parametrize("version", sorted(NOT_IN))
def test_seed_stubs_match_spinnman(
    interop_python: Callable[..., Path], tmp_path: Path, version: str
) -> None:
    """The seed table of tests/client/test_api_surface.py matches spinnman itself."""
    from tests.client.test_api_surface import CONSTRUCTOR_DIFFERENCES, SURFACE, _members

    python = interop_python(f"spinnman=={version}", "packaging")
    absent_names, absent_members = NOT_IN[version]
    wanted: dict[str, list[str]] = {}
    expected: dict[str, Any] = {}
    for seed_name, (stub, _) in SURFACE.items():
        members = [] if inspect.isfunction(stub) else sorted(_members(stub))
        if seed_name in CONSTRUCTOR_DIFFERENCES or "." in seed_name:
            members = [m for m in members if m != "__init__"]
        wanted[seed_name] = members
        expected[seed_name] = describe_members(stub, members)
    body = (
        "wanted = json.loads(sys.argv[1])\n"
        "out = {}\n"
        "for seed, members in wanted.items():\n"
        "    module, _, name = seed.rpartition('.')\n"
        "    try:\n"
        "        package = 'spinnman.spalloc' + ('.' + module if module else '')\n"
        "        mod = importlib.import_module(package)\n"
        "        out[seed] = describe_members(getattr(mod, name), members)\n"
        "    except (ImportError, AttributeError):\n"
        "        out[seed] = 'absent'\n"
        "print(json.dumps(out))\n"
    )
    actual = describe_in_venv(python, tmp_path, body, wanted)
    absent = {seed for seed, found in actual.items() if found == "absent"}
    assert absent == absent_names
    mismatches = {}
    for seed_name, members in expected.items():
        if seed_name in absent:
            continue
        for member, description in members.items():
            theirs = actual[seed_name].get(member)
            if f"{seed_name}.{member}" in absent_members:
                assert theirs == "missing", f"{version} has {seed_name}.{member} now"
            elif theirs != description:
                mismatches[f"{seed_name}.{member}"] = {"stub": description, "spinnman": theirs}
    assert mismatches == {}, json.dumps(mismatches)


def test_741_stubs_match_spinnman(interop_python: Callable[..., Path], tmp_path: Path) -> None:
    """The 7.4.1 additions table of tests/client/test_api_surface.py matches spinnman 7.4.1."""
    from tests.client.test_api_surface import ADDITIONS_741, _members

    python = interop_python(*SPINNMAN_741)
    wanted = {name: sorted(_members(stub)) for name, (stub, _) in ADDITIONS_741.items()}
    expected = {
        name: describe_members(stub, wanted[name]) for name, (stub, _) in ADDITIONS_741.items()
    }
    body = (
        "wanted = json.loads(sys.argv[1])\n"
        "out = {}\n"
        "for name, members in wanted.items():\n"
        "    module, _, attr = name.rpartition('.')\n"
        "    found = getattr(importlib.import_module(module), attr)\n"
        "    out[name] = {'members': describe_members(found, members),\n"
        "                 'bases': [c.__name__ for c in found.__mro__]}\n"
        "print(json.dumps(out))\n"
    )
    actual = describe_in_venv(python, tmp_path, body, wanted)
    mismatches = {
        name: {"stub": expected[name], "spinnman": actual[name]["members"]}
        for name in ADDITIONS_741
        if actual[name]["members"] != expected[name]
    }
    assert mismatches == {}, json.dumps(mismatches)
    exception = "spinnman.exceptions.SpallocBoardUnavailableException"
    assert "SpallocException" in actual[exception]["bases"]
