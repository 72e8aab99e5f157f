"""``pyspalloc serve --v1-port/--v1-user/--v1-allow``: the listener from the command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pyspalloc.cli.serve import serve
from tests.reliability.serve_process import ServeProcess
from tests.server.v1.conftest import LineClient
from tests.support.addresses import free_port
from tests.support.waiting import wait_for


def test_serve_with_the_v1_listener(tmp_path: Path) -> None:
    v1_port = free_port()
    process = ServeProcess(tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    process.start("--v1-port", str(v1_port), "--v1-user", "oldtools")
    try:
        wait_for(lambda: any("v1 (old spalloc clients)" in line for line in process.lines), 30)
        client = LineClient(v1_port)
        try:
            job = client.call("create_job", owner="cli@example.org")
            client.wait_ready(job)
            assert client.call("list_jobs")[0]["owner"] == "cli@example.org"
        finally:
            client.close()
    finally:
        process.stop()


def test_serve_refuses_a_v1_network_it_cannot_read(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(serve, ["--v1-port", "0", "--v1-user", "x", "--v1-allow", "nowhere"])
    assert result.exit_code == 2 and "not an address or network" in result.output
    result = runner.invoke(serve, ["--v1-port", "0"])
    assert result.exit_code == 2 and "--v1-user" in result.output
    result = runner.invoke(serve, ["--v1-user", "x"])
    assert result.exit_code == 2 and "need --v1-port" in result.output
