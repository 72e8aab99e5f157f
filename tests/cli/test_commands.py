"""Every client-side command against a real service on a free loopback port."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, one_line_error


def ready(job: Any, timeout: float = 20.0) -> Any:
    """Wait (polling) until a job is READY; the long poll of wait_until_ready can miss a
    change that happens just before it starts."""
    deadline = time.monotonic() + timeout
    while job.get_state().name != "READY":
        assert time.monotonic() < deadline, "job did not become READY"
        time.sleep(0.05)
    return job


def _job_state(client: Any, job_id: int) -> dict[str, Any]:
    job = client.get_job(job_id)
    state: dict[str, Any] = job.get_state_json()
    return state


# ------------------------------------------------------------------ machines


def test_machines_lists_spin24(cli: Cli) -> None:
    machines = cli.json("machines")
    assert [m["name"] for m in machines] == ["spin24"]
    (m,) = machines
    assert (m["width"], m["height"], m["triads"], m["boards"]) == (4, 2, 8, 24)
    assert m["tags"] == ["default"]
    assert (m["boards_in_use"], m["dead_boards"], m["jobs"]) == (0, 0, [])
    table = cli("machines")
    assert table.exit_code == 0
    assert "spin24" in table.stdout and "4x2" in table.stdout


def test_machines_counts_and_maps_jobs(cli: Cli, client_for: Callable[..., Any]) -> None:
    alice, bob = client_for("alice"), client_for("bob")
    first = alice.create_job_rect(1, 1)
    second = bob.create_job(1)
    ready(first)
    ready(second)
    ids = sorted(j.job_id for j in (first, second))

    (summary,) = cli.json("machines")
    assert summary["boards_in_use"] == 4
    assert summary["jobs"] == ids

    detail = cli.json("machines", "spin24")
    assert len(detail["boards_detail"]) == 24
    held = [b for b in detail["boards_detail"] if b["job_id"] is not None]
    assert len(held) == 4
    assert {b["job_id"] for b in held} == set(ids)
    keys = {j["id"]: j for j in detail["jobs"]}
    assert keys[first.job_id]["boards"] == 3 and keys[first.job_id]["key"] == "A"
    assert keys[second.job_id]["boards"] == 1 and keys[second.job_id]["key"] == "B"
    # alice may not see bob's job, so its owner is not shown to her
    assert keys[first.job_id]["owner"] == "alice" and keys[second.job_id]["owner"] is None
    assert cli.json("machines", "spin24", user="root")["jobs"][1]["owner"] == "bob"

    text = cli("machines", "spin24").stdout
    grid = [
        line[4:]
        for line in text.splitlines()
        if re.fullmatch(r"(  \d | {4})[ .xAB]+", line) and set(line[4:]) & set(".xAB")
    ]
    assert len(grid) == 6  # 3 rows of boards per triad row
    assert "".join(grid).count("A") == 3 and "".join(grid).count("B") == 1
    assert "".join(grid).count(".") == 20


def test_machines_unknown_name(cli: Cli) -> None:
    result = cli("machines", "nope")
    assert result.exit_code == 4
    assert "no such machine: nope" in one_line_error(result)


# ------------------------------------------------------------------ jobs


def test_jobs_and_ps(cli: Cli, client_for: Callable[..., Any]) -> None:
    assert cli.json("jobs") == []
    alice = client_for("alice")
    job = alice.create_job(2)
    ready(job)
    gone = alice.create_job(1)
    ready(gone)
    gone.destroy("test over")

    (listed,) = cli.json("jobs")
    assert listed["id"] == job.job_id
    assert (listed["owner"], listed["state"]) == ("alice", "READY")
    assert listed["num_boards"] >= 2  # whole triads may be given
    assert listed["machine"] == "spin24"
    assert listed["keepalive_host"] == "127.0.0.1"
    assert [j["id"] for j in cli.json("ps")] == [job.job_id]

    everything = cli.json("jobs", "--deleted")
    assert [j["id"] for j in everything] == [gone.job_id, job.job_id]
    assert everything[0]["state"] == "DESTROYED" and everything[0]["reason"] == "test over"
    assert cli.json("jobs", "--owner", "bob") == []
    assert cli.json("jobs", "--machine", "spin24")[0]["id"] == job.job_id

    # bob does not see alice's job, the admin does
    assert cli.json("jobs", user="bob") == []
    assert [j["id"] for j in cli.json("jobs", user="root")] == [job.job_id]

    table = cli("ps")
    assert table.exit_code == 0
    assert f"│ {job.job_id} " in table.stdout and "READY" in table.stdout


# ------------------------------------------------------------------ alloc


@pytest.mark.parametrize(
    ("args", "boards", "size"),
    [
        ((), 1, (1, 1)),
        (("2",), -2, None),
        (("2", "1"), 6, (2, 1)),
        (("--triad", "1", "1", "2"), 1, (1, 1)),
        (("1", "1", "2"), 1, (1, 1)),
        (("--physical", "0", "0", "5"), 1, (1, 1)),
        (("--rect-at", "1", "1", "--triad", "2", "0", "0"), 3, (1, 1)),
        (("1", "2", "--triad", "3", "0", "0", "--max-dead-boards", "0"), 6, (1, 2)),
        (("--machine", "spin24", "4"), -4, None),
    ],
)
def test_alloc_request_kinds(
    cli: Cli,
    client_for: Callable[..., Any],
    tmp_path: Path,
    args: tuple[str, ...],
    boards: int,
    size: tuple[int, int] | None,
) -> None:
    out = tmp_path / "seen.txt"
    command = f"echo {{hostname}} {{id}} {{width}} {{height}} {{machine}} > {out}; exit 3"
    job = cli.json("alloc", *args, "--command", command, code=3)
    assert job["state"] == "READY"
    assert job["num_boards"] == len(job["connections"]) == len(job["boards"])
    # a negative count is a minimum: several boards may be given whole triads
    assert job["num_boards"] == boards if boards > 0 else job["num_boards"] >= -boards
    if size is not None:
        assert (job["width"], job["height"]) == size
    root = job["connections"][0]
    assert (root["x"], root["y"]) == (0, 0)
    assert out.read_text().split() == [
        root["hostname"],
        str(job["id"]),
        str(job["width"]),
        str(job["height"]),
        "spin24",
    ]
    # the job was destroyed once the command finished
    state = _job_state(client_for("alice"), job["id"])
    assert state["state"] == "DESTROYED"
    assert state["reason"] == "command exited with 3"


def test_alloc_specific_boards(cli: Cli) -> None:
    job = cli.json("alloc", "--triad", "1", "1", "2", "--command", "true")
    assert job["boards"] == [[1, 1, 2]]
    job = cli.json("alloc", "--physical", "0", "0", "5", "--command", "true")
    where = cli.json("where-is", "--physical", "spin24", "0", "0", "5")
    assert job["boards"] == [where["logical"]]
    job = cli.json("alloc", "--ip", job["connections"][0]["hostname"], "--command", "true")
    assert job["boards"] == [where["logical"]]


def test_alloc_ethernet_ips_file_and_no_destroy(
    cli: Cli, client_for: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "ips.csv"
    job = cli.json("alloc", "2", "1", "--no-destroy", "--command", f"cp {{ethernet_ips}} {out}")
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert [(int(x), int(y), h) for x, y, h in rows] == [
        (c["x"], c["y"], c["hostname"]) for c in job["connections"]
    ]
    assert _job_state(client_for("alice"), job["id"])["state"] == "READY"


def test_alloc_progress_display(cli: Cli) -> None:
    result = cli("alloc", "1", "--command", "true")
    assert result.exit_code == 0, result.output
    assert "READY" in result.stdout
    assert "Connections" in result.stdout and "127.1.0." in result.stdout
    assert "destroyed" in result.stderr


def test_alloc_refused(cli: Cli) -> None:
    result = cli("alloc", "100", "--command", "true")
    assert result.exit_code == 1
    assert "request cannot fit on machine" in one_line_error(result)
    result = cli("alloc", "--triad", "0", "0", "0", "--ip", "127.1.0.1")
    assert result.exit_code == 2


def test_alloc_group_of_a_member_of_several(cli: Cli, client_for: Callable[..., Any]) -> None:
    admin = client_for("root").admin()
    admin.create_group("physics", 100.0)
    admin.add_member("physics", "alice")
    result = cli("alloc", "--command", "true")
    assert result.exit_code == 1
    assert "the owner is in several groups" in one_line_error(result)
    job = cli.json("alloc", "--group", "physics", "--command", "true")
    state = _job_state(client_for("alice"), job["id"])
    assert state["original-request"]["group"] == "physics"
    assert state["reason"] == "command exited with 0"


# ------------------------------------------------------------------ job


def test_job_info_power_keepalive_destroy(cli: Cli, client_for: Callable[..., Any]) -> None:
    alice = client_for("alice")
    job = alice.create_job(3)
    ready(job)
    job_id = str(job.job_id)

    info = cli.json("job", job_id)
    assert (info["id"], info["state"], info["owner"], info["num_boards"]) == (
        job.job_id,
        "READY",
        "alice",
        3,
    )
    assert info["power"] == "ON"
    assert info["request"]["num-boards"] == 3
    assert cli.json("job")["id"] == job.job_id  # the only live job

    text = cli("job", job_id)
    assert text.exit_code == 0 and "READY" in text.stdout and "alice" in text.stdout

    off = cli.json("job", job_id, "--power", "off")
    assert (off["state"], off["power"]) == ("READY", "OFF")
    on = cli.json("job", job_id, "--power", "on")
    assert (on["state"], on["power"]) == ("READY", "ON")

    kept = cli("job", job_id, "--keepalive")
    assert kept.exit_code == 0 and "keepalive sent" in kept.stdout

    gone = cli.json("job", job_id, "--destroy", "all done")
    assert (gone["state"], gone["reason"]) == ("DESTROYED", "all done")
    assert _job_state(alice, job.job_id)["reason"] == "all done"

    # the reason is optional
    other = alice.create_job(1)
    assert cli.json("job", str(other.job_id), "--destroy")["state"] == "DESTROYED"


def test_job_errors(cli: Cli, client_for: Callable[..., Any]) -> None:
    result = cli("job", "4242")
    assert result.exit_code == 4
    assert one_line_error(result) == "Error: no such job: 4242"
    result = cli("job")
    assert result.exit_code == 4
    assert "no live jobs" in one_line_error(result)
    # bob cannot see alice's job
    job = client_for("alice").create_job(1)
    result = cli("job", str(job.job_id), user="bob")
    assert result.exit_code == 4
    result = cli("job", str(job.job_id), "--power", "on", "--keepalive")
    assert result.exit_code == 2
    # "--destroy 5" would read 5 as the reason: refused rather than guessing the job
    result = cli("job", "--destroy", str(job.job_id))
    assert result.exit_code == 2 and "did you mean job" in result.stderr
    assert client_for("alice").get_job(job.job_id).get_state().name != "DESTROYED"


# ------------------------------------------------------------------ where-is


def test_where_is_every_query(cli: Cli, client_for: Callable[..., Any]) -> None:
    job = client_for("alice").create_job_rect(2, 1)
    ready(job)
    root = job.get_connections()[0, 0]
    by_triad = cli.json("where-is", "--triad", "spin24", "1", "0", "1")
    # a 2x1 rectangle on an empty machine starts at triad (0, 0)
    assert by_triad["logical"] == [1, 0, 1]
    assert by_triad["chip"] == by_triad["board_chip"] == [20, 4]
    assert by_triad["job_id"] == job.job_id
    assert by_triad["job_chip"] == [20, 4]

    physical = by_triad["physical"]
    by_physical = cli.json("where-is", "--physical", "spin24", *map(str, physical))
    assert by_physical["logical"] == [1, 0, 1]

    by_chip = cli.json("where-is", "--chip", "spin24", "22", "6")
    assert by_chip["logical"] == [1, 0, 1]
    assert (by_chip["chip"], by_chip["board_chip"]) == ([22, 6], [20, 4])

    by_ip = cli.json("where-is", "--ip", "spin24", root)
    assert by_ip["logical"] == [0, 0, 0] and by_ip["job_id"] == job.job_id

    by_job = cli.json("where-is", "--job", str(job.job_id), "13", "5")
    assert by_job["job_id"] == job.job_id
    assert by_job["logical"] == [0, 0, 1]
    assert by_job["job_chip"] == [13, 5]

    text = cli("where-is", "--chip", "spin24", "22", "6")
    assert text.exit_code == 0
    assert f"Cabinet {physical[0]}, Frame {physical[1]}, Board {physical[2]}" in text.stdout


def test_where_is_nothing_there(cli: Cli) -> None:
    for args in (
        ("--triad", "spin24", "9", "9", "0"),
        ("--chip", "spin24", "1000", "0"),
        ("--ip", "spin24", "10.0.0.1"),
        ("--job", "77", "0", "0"),
        ("--triad", "nope", "0", "0", "0"),
    ):
        result = cli("where-is", *args)
        assert result.exit_code == 4, (args, result.output)
        one_line_error(result)
    assert cli("where-is").exit_code == 2
    assert cli("where-is", "--triad", "spin24", "a", "0", "0").exit_code == 2


# ------------------------------------------------------------------ errors and settings


def test_wrong_password(cli: Cli) -> None:
    for command in (("machines",), ("jobs",), ("alloc", "--command", "true"), ("job", "1")):
        result = cli(*command, password="wrong")
        assert result.exit_code == 1
        assert "login" in one_line_error(result)
        assert "wrong user name, password or token" in result.stderr


def test_no_service(cli: Cli) -> None:
    from tests.support.addresses import free_port

    dead = Cli(f"http://127.0.0.1:{free_port()}/spalloc/")
    result = dead("jobs")
    assert result.exit_code == 6
    assert "connection refused" in one_line_error(result)


def test_missing_settings(cli: Cli) -> None:
    from click.testing import CliRunner

    from pyspalloc.cli.main import main

    result = CliRunner().invoke(main, ["jobs"])
    assert result.exit_code == 2 and "no service given" in result.output
    result = cli("jobs", user=None)
    assert result.exit_code == 1 and "no credentials" in one_line_error(result)


def test_bearer_token(cli: Cli, db_url: str) -> None:
    from click.testing import CliRunner

    from pyspalloc.cli.main import main

    issued = CliRunner().invoke(main, ["user", "token", "bob", "--database", db_url])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    job = cli.json("alloc", "--token", token, "--command", "true", user=None)
    assert job["owner"] == "bob" and job["state"] == "READY"
    result = cli("jobs", "--token", "not-a-token", user=None)
    assert result.exit_code == 1
    one_line_error(result)


def test_alloc_gives_up_waiting(cli: Cli, client_for: Callable[..., Any]) -> None:
    blocker = ready(client_for("bob").create_job_rect(4, 2))
    result = cli("alloc", "3", "--timeout", "1")
    assert result.exit_code == 1
    assert "still QUEUED after 1 s" in one_line_error(result)
    assert "QUEUED" in result.stdout
    (gone,) = cli.json("jobs", "--deleted")
    assert gone["state"] == "DESTROYED"
    assert gone["reason"] == f"alloc failed: job {gone['id']} is still QUEUED after 1 s"
    blocker.destroy()


def test_bearer_token_and_config_file(
    cli: Cli, service: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from pyspalloc.cli.main import main

    config = tmp_path / "config.ini"
    config.write_text(f"[pyspalloc]\nurl = {service.url}\nusername = bob\npassword = bob-pw-2\n")
    monkeypatch.setenv("PYSPALLOC_CONFIG", str(config))
    result = CliRunner().invoke(main, ["machines", "--json"])
    assert result.exit_code == 0, result.output
    # options beat the config file
    result = CliRunner().invoke(main, ["machines", "--password", "nope"])
    assert result.exit_code == 1


# ------------------------------------------------------------------ dead boards


def test_dead_board(make_service: Callable[..., Any], tmp_path: Path) -> None:
    import json

    from pyspalloc.geometry import builtin_machine, dump_machine_definitions

    definition: Any = json.loads(json.dumps(dump_machine_definitions([builtin_machine("spin24")])))
    definition["machines"][0]["dead-boards"] = [[2, 1, 1]]
    path = tmp_path / "dead.json"
    path.write_text(json.dumps(definition))
    cli = Cli(make_service(machines=[str(path)]).url)

    (summary,) = cli.json("machines")
    assert (summary["boards"], summary["dead_boards"]) == (23, 1)
    detail = cli.json("machines", "spin24")
    dead = [b for b in detail["boards_detail"] if b["dead"]]
    assert [(b["x"], b["y"], b["z"]) for b in dead] == [(2, 1, 1)]
    text = cli("machines", "spin24").stdout
    grid = [line[4:] for line in text.splitlines() if re.fullmatch(r"(  \d | {4})[ .x]+", line)]
    assert "".join(grid).count("x") == 1

    refused = cli("alloc", "1", "1", "--triad", "2", "1", "0", "--command", "true")
    assert refused.exit_code == 1
    one_line_error(refused)
    job = cli.json("alloc", "1", "1", "--triad", "2", "1", "0", "--max-dead-boards", "1",
                   "--command", "true")  # fmt: skip
    assert sorted(map(tuple, job["boards"])) == [(2, 1, 0), (2, 1, 2)]


# ------------------------------------------------------------------ HTTPS


def test_https_service(make_service: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(self_signed=True)
    assert service.url.startswith("https://")
    cli = Cli(service.url)
    untrusted = cli("jobs")
    assert untrusted.exit_code == 6
    assert "REQUESTS_CA_BUNDLE" in one_line_error(untrusted)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(service.cert_file))
    job = cli.json("alloc", "--command", "true")
    assert job["state"] == "READY" and job["url"].startswith("https://")


def test_reader(cli: Cli, client_for: Callable[..., Any]) -> None:
    """rita (READER) may look at machines but not create jobs."""
    job = client_for("root").create_job(1)
    (summary,) = cli.json("machines", user="rita")
    assert summary["jobs"] == [job.job_id]
    refused = cli("alloc", "--command", "true", user="rita")
    assert refused.exit_code == 1
    assert "HTTP 403" in one_line_error(refused)
