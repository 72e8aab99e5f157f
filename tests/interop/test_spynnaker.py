"""The real tool chain: sPyNNaker 1!7.4.1 runs a PyNN script through ``pyspalloc serve``.

Everything is a separate process, as on a user's machine: ``pyspalloc virtual`` runs a
one-board machine, ``pyspalloc serve`` (HTTPS, test CA; spinnman forces ``https``)
controls it through its BMP, and sPyNNaker, configured only by a ``~/.spynnaker.cfg``
in a temporary home, gets a job, connects through the proxy, and maps, loads and starts
a small network. Virtual boards run no ARM code, so the run cannot finish: the test
stops it at the first phase that needs ARM code (the neuron expander, or the wait for
the application) and asserts, from sPyNNaker's own log, which phases passed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from pyspalloc.geometry import builtin_machine
from pyspalloc.geometry.json_format import dump_machine_definitions
from tests.reliability.serve_process import make_users
from tests.support.addresses import free_port, free_virtual_base
from tests.support.certificates import make_test_ca
from tests.support.http_client import PASSWORDS

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(480)]

#: the packages a sPyNNaker user installs (spinnman needs ``packaging`` too)
REQUIREMENTS = ("sPyNNaker==1!7.4.1", "pyNN", "packaging")
#: runs the ``pyspalloc`` command line with this interpreter (and this tree)
PYSPALLOC = [sys.executable, "-c", "from pyspalloc.cli.main import main; main()"]

#: a SpikeSourceArray driving a few IF_curr_exp neurons for 10 ms
PYNN_SCRIPT = textwrap.dedent(
    """
    import pyNN.spiNNaker as sim

    sim.setup(timestep=1.0)
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0, 2.0, 3.0]))
    neurons = sim.Population(4, sim.IF_curr_exp(), label="neurons")
    sim.Projection(
        source, neurons, sim.AllToAllConnector(), sim.StaticSynapse(weight=5.0, delay=1.0)
    )
    neurons.record("spikes")
    sim.run(10)
    print("RUN FINISHED", flush=True)
    sim.end()
    """
)

#: sPyNNaker's "<phase> took <time>" log lines for the phases that need only Spalloc and
#: SC&MP, in the order they run: allocation and proxy, discovery, routing, loading
NEEDED_PHASES = (
    "Transceiver by Spalloc",
    "Reset routing",
    "Fixed routes",
    "Load system data specification",
    "Load executable system Images",
    "Tags Loader",
    "Load Application data specification",
)
#: the progress bar of the first phase that waits for ARM code (the neuron expander)
ARM_PHASE = "Expanding Neuron Data"
#: a phase that ended: ``... INFO: <phase> took 0:00:01.867153``
#: seconds to let the run settle into its wait for the expander
SETTLE = 10.0
PHASE_DONE = re.compile(r"INFO: (.+?) took \d+:\d\d:\d\d")


class Output:
    """A process's output lines (stdout and stderr merged), read by a thread as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, done: Callable[[str], bool], timeout: float) -> bool:
        """Collect lines until ``done(line)`` (True), the end of output or ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self._queue.put(None)
                return False
            self.lines.append(line)
            if done(line):
                return True
        return False

    def text(self) -> str:
        return "\n".join(self.lines)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass
class Toolchain:
    """The live service a test talks to."""

    url: str
    ca: Path
    board_ip: str
    serve_output: Output


@pytest.fixture
def toolchain(tmp_path: Path) -> Iterator[Toolchain]:
    """``pyspalloc virtual`` (spin5) and ``pyspalloc serve`` over HTTPS, BMP-controlled."""
    base = free_virtual_base()
    definition = builtin_machine("spin5", base)
    machine_file = tmp_path / "machine.json"
    machine_file.write_text(json.dumps(dump_machine_definitions([definition])))
    ca, cert, key = make_test_ca(tmp_path)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started: list[subprocess.Popen[str]] = []
    try:
        virtual = subprocess.Popen(
            [*PYSPALLOC, "virtual", "--machine", "spin5", "--address-base", base],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        started.append(virtual)
        virtual_output = Output(virtual)
        if not virtual_output.wait_for(lambda line: line.strip() == "ready", 30):
            pytest.fail("pyspalloc virtual did not start:\n" + virtual_output.text())
        database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
        make_users(database)
        port = free_port()
        serve = subprocess.Popen(
            [*PYSPALLOC, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
             "--database", database, "--machine", str(machine_file), "--controller", "bmp",
             "--tls-cert", str(cert), "--tls-key", str(key)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        started.append(serve)
        serve_output = Output(serve)
        if not serve_output.wait_for(lambda line: "Spalloc service at" in line, 60):
            pytest.fail("pyspalloc serve did not start:\n" + serve_output.text())
        url = f"https://127.0.0.1:{port}/spalloc/"
        reply = requests.get(url + "system/login.html", timeout=10, verify=str(ca))
        assert reply.status_code == 200
        board = definition.boards[next(iter(definition.boards))]
        yield Toolchain(url, ca, board.ip, serve_output)
    finally:
        for process in reversed(started):
            _stop(process)


def _user_home(tmp_path: Path, service: Toolchain) -> Path:
    """A home directory with the ``~/.spynnaker.cfg`` a Spalloc user writes."""
    home = tmp_path / "home"
    home.mkdir()
    url = service.url.replace("https://", f"https://alice:{PASSWORDS['alice']}@")
    (home / ".spynnaker.cfg").write_text(
        textwrap.dedent(
            f"""
            [Machine]
            spalloc_server = {url}
            spalloc_use_proxy = True
            version = 5
            """
        )
    )
    return home


def test_spynnaker_runs_through_the_service(
    interop_python: Callable[..., Path], toolchain: Toolchain, tmp_path: Path
) -> None:
    python = interop_python(*REQUIREMENTS)
    home = _user_home(tmp_path, toolchain)
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "network.py").write_text(PYNN_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPALLOC_", "PYTHON"))}
    env.update(
        HOME=str(home),
        REQUESTS_CA_BUNDLE=str(toolchain.ca),
        WEBSOCKET_CLIENT_CA_BUNDLE=str(toolchain.ca),
        PYTHONUNBUFFERED="1",
        MPLBACKEND="Agg",
    )
    env.pop("SSL_CERT_FILE", None)
    process = subprocess.Popen(
        [str(python), "network.py"],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    output = Output(process)
    try:
        reached_arm = output.wait_for(lambda line: ARM_PHASE in line, 240)
        # the expander's binary is loaded, then the run waits for cores that never run
        output.wait_for(lambda _: False, SETTLE)
        before_arm = output.text()
        still_running = process.poll() is None
        # stop it as a user would (Ctrl-C) while it waits for the expander
        process.send_signal(signal.SIGINT)
        output.wait_for(lambda _: False, 30)
    finally:
        _stop(process)
    log = output.text()
    print(log[-6000:])
    assert reached_arm, f"sPyNNaker did not reach the neuron expander:\n{log[-8000:]}"
    done = PHASE_DONE.findall(before_arm)
    missing = [phase for phase in NEEDED_PHASES if phase not in done]
    assert not missing, f"phases not passed: {missing}\n{before_arm[-8000:]}"
    order = [done.index(phase) for phase in NEEDED_PHASES]
    assert order == sorted(order), done
    for bad in ("Traceback", "Exception", "SCP", "RC_", "ERROR"):
        assert bad not in before_arm, f"{bad!r} before the expander:\n{before_arm[-8000:]}"
    # it was waiting for the expander's cores (ARM code) when it was stopped
    assert still_running, before_arm[-8000:]
    after = log[len(before_arm) :]
    assert "Neuron expander exited with KeyboardInterrupt" in after, after[-8000:]
    assert "wait_for_cores_to_be_in_state" in after, after[-8000:]
    assert "Traceback" not in toolchain.serve_output.text(), toolchain.serve_output.text()
