"""The real spinnman clients (1!7.3.0 and 1!7.4.1) against our service over HTTPS.

The service runs with a certificate signed by a test CA (spinnman forces ``https``), on
a virtual spin24 whose boards are powered, fenced and booted by the BMP controller. The
clients talk to the boards only through the proxy websocket (7.3.0) or the server-side
memory and router endpoints (7.4.1).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.geometry import MachineDefinition
from pyspalloc.server.bmp_control import BMPControlOptions, BMPMachineController
from pyspalloc.transceiver.boot import boot_image
from pyspalloc.virtual import VirtualMachine
from pyspalloc.wire.eieio import EIEIODataMessage, EIEIOType
from tests.support import virtual_machines
from tests.support.certificates import make_test_ca

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
    # the database is not what these test: SQLite only, whatever else is configured
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

# the service boots jobs' boards with our synthetic image (boots virtual boards only)
FAST = BMPControlOptions(
    retry_delay=0.1, power_timeout=2.0, boot_timeout=15.0, boot_image=boot_image()
)
KEYS = (0x1234, 0xBEEF0001, 0xCAFE0002)

PRELUDE = r"""
import json, os, re, sys, time, types
from spinnman.config_setup import unittest_setup
unittest_setup()
from spinn_utilities.config_holder import set_config
set_config("Machine", "version", "5")
from spinnman.spalloc import SpallocClient

url, user, password, token = sys.argv[1:5]
out = {}

def emit(obj):
    print(json.dumps(obj), flush=True)
"""

SCRIPT_730 = (
    PRELUDE
    + r"""
client = SpallocClient(url, user, password)
out["version"] = str(client.version)
out["machines"] = sorted(client.list_machines())

job = client.create_job(1)
job.wait_until_ready()
out["connections"] = sorted([x, y, ip] for (x, y), ip in job.get_connections().items())
out["where"] = list(job.where_is_machine(0, 0))
txrx = job.create_transceiver()
out["chips"] = txrx.get_machine_details().n_chips
data = os.urandom(1 << 20)
start = time.time()
txrx.write_memory(0, 0, 0x60000000, data)
out["write_s"] = time.time() - start
start = time.time()
back = txrx.read_memory(0, 0, 0x60000000, len(data))
out["read_s"] = time.time() - start
out["memory_ok"] = bytes(back) == data
listener = job.open_eieio_listener_connection()
listener.update_tag(0, 0, 1)
emit({"listening": job.get_root_host()})
message = listener.receive_eieio_message(timeout=30)
keys = []
while message.is_next_element:
    keys.append(message.next_element.key)
out["keys"] = keys
txrx.close()
job.destroy()

rect = client.create_job_rect(1, 1)
rect.wait_until_ready()
out["rect_boards"] = len(rect.get_connections())
unittest_setup()  # spinnman keeps one machine per process: start afresh
set_config("Machine", "version", "5")
txrx = rect.create_transceiver()
out["rect_chips"] = txrx.get_machine_details().n_chips
txrx.close()
rect.destroy()

board = client.create_job_board(triad=(1, 0, 2))
board.wait_until_ready()
out["board_where"] = list(board.where_is_machine(0, 0))
board.destroy()
client.close()

bearer = SpallocClient(url, bearer_token=token)
out["bearer_machines"] = sorted(bearer.list_machines())
job = bearer.create_job(1)
job.wait_until_ready()
out["bearer_connections"] = len(job.get_connections())
job.destroy()
bearer.close()
emit(out)
os._exit(0)
"""
)

SCRIPT_741 = (
    PRELUDE
    + r"""
set_config("Machine", "spalloc_triad", "1,1,0")  # 7.4.1 takes the request from config
client = SpallocClient(url, user, password)
job = client.create_job()
job.wait_until_ready()
job_id = re.search(r"/jobs/+(\d+)", repr(job)).group(1)
again = client.get_job(job_id)
data = os.urandom(300_000)
again.write_data(0, 0, 0x60000000, data)
out["data_ok"] = again.read_data(0, 0, 0x60000000, len(data)) == data
again.write_data(3, 2, 0x60001000, b"chip 3,2")
out["chip_ok"] = again.read_data(3, 2, 0x60001000, 8) == b"chip 3,2"
word = types.SimpleNamespace
again.reset_routing({3: word(filter_word=0x12345), 5: word(filter_word=7)})
filters = again.read_data(0, 0, 0xE1000200, 64)
out["filters"] = [int.from_bytes(filters[4 * i : 4 * i + 4], "little") for i in (3, 5)]
job.destroy()
client.close()
emit(out)
os._exit(0)
"""
)


machine = virtual_machines.machine


@pytest.fixture
def tls_service(
    make_service: Callable[..., Any],
    machine: tuple[MachineDefinition, VirtualMachine],
    tmp_path: Path,
) -> tuple[Any, Path]:
    definition, _ = machine
    ca, cert, key = make_test_ca(tmp_path)
    base = definition.boards[next(iter(definition.boards))].bmp_ip
    service = make_service(
        machines=["spin24"],
        virtual_address_base=base,
        tls_cert=cert,
        tls_key=key,
        instant_controller=BMPMachineController(FAST),
    )
    assert service.url.startswith("https://127.0.0.1:")
    return service, ca


def _env(ca: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPALLOC_")}
    env["REQUESTS_CA_BUNDLE"] = str(ca)
    env["WEBSOCKET_CLIENT_CA_BUNDLE"] = str(ca)
    env.pop("SSL_CERT_FILE", None)
    return env


def _start(
    python: Path, script: str, args: list[str], env: dict[str, str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(python), "-u", "-c", script, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _line(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                return result
            if not line and process.poll() is not None:
                break
    process.kill()
    _, err = process.communicate(timeout=10)
    pytest.fail(f"spinnman script gave no result line; stderr:\n{err[-6000:]}")


def _credentials(service: Any) -> list[str]:
    ctx = service.app.state.ctx
    token: str = ctx.auth.issue_token(ctx.store.get_user("alice"))
    return [service.url, "alice", "alice-pw-1", token]


def test_spinnman_730_through_our_service(
    interop_python: Callable[..., Path],
    tls_service: tuple[Any, Path],
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    python = interop_python("spinnman==1!7.3.0", "packaging")
    service, ca = tls_service
    _, vm = machine
    process = _start(python, SCRIPT_730, _credentials(service), _env(ca))
    try:
        listening = _line(process, 180)
        board = vm.board_by_ip(listening["listening"])
        assert board is not None and board.booted
        board.send_from_core(0, 0, 1, 1, EIEIODataMessage(EIEIOType.KEY_32, KEYS).to_bytes())
        result = _line(process, 240)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    print("spinnman 7.3.0:", {k: result[k] for k in ("chips", "write_s", "read_s")})
    assert result["version"] == "7.4.2"
    assert result["machines"] == ["spin24"]
    assert [x for x, _, _ in result["connections"]] == [0] and len(result["connections"]) == 1
    assert len(result["where"]) == 3
    assert result["chips"] == 48
    assert result["memory_ok"] is True
    assert result["keys"] == list(KEYS)
    assert result["rect_boards"] == 3
    assert result["rect_chips"] == 144
    assert len(result["board_where"]) == 3
    assert result["bearer_machines"] == ["spin24"]
    assert result["bearer_connections"] == 1


def test_spinnman_741_server_side_memory_and_routing(
    interop_python: Callable[..., Path], tls_service: tuple[Any, Path]
) -> None:
    python = interop_python("spinnman==1!7.4.1", "packaging")
    service, ca = tls_service
    process = _start(python, SCRIPT_741, _credentials(service), _env(ca))
    try:
        result = _line(process, 240)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert result == {"data_ok": True, "chip_ok": True, "filters": [0x12345, 7]}
