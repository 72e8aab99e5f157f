"""``pyspalloc serve --machine virtual:NAME[@BASE]``: services on one host, each with its
own virtual machine (a child process) on its own address range."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyspalloc.client import SpallocClient
from pyspalloc.wire.scp import SCPCommand, SCPResult, scp_request
from tests.reliability.serve_process import VirtualServeProcess, make_users
from tests.support.addresses import free_virtual_base
from tests.support.http_client import PASSWORDS

START_TIMEOUT = 120.0


def _use(process: VirtualServeProcess) -> tuple[str, int]:
    """Allocate a board, reach it through the proxy; return its address and VER's result."""
    with SpallocClient(process.url, "alice", PASSWORDS["alice"]) as client:
        job = client.create_job(1)
        try:
            job.wait_until_ready(timeout=90)
            ip = job.get_connections()[0, 0]
            connection = job.connect_to_board(0, 0)
            try:
                connection.send_scp_request(scp_request(0, 0, 0, SCPCommand.VER, sequence=7))
                result, sequence, _, _ = connection.receive_scp_response(30.0)
            finally:
                connection.close()
        finally:
            job.destroy("test over")
    assert sequence == 7
    return ip, result


def test_services_on_one_host_each_get_their_own_addresses(tmp_path: Path) -> None:
    base = free_virtual_base()
    specs = ["virtual:spin24", "virtual:spin24", f"virtual:spin24@{base}"]
    processes = []
    for number, spec in enumerate(specs):
        database = f"sqlite:///{tmp_path / f'spalloc{number}.sqlite3'}"
        make_users(database)
        processes.append(VirtualServeProcess(tmp_path / f"data{number}", database, spec))
    try:
        with ThreadPoolExecutor(len(processes)) as pool:  # started at the same time
            list(pool.map(lambda p: p.start(timeout=START_TIMEOUT), processes))
        with ThreadPoolExecutor(len(processes)) as pool:
            used = list(pool.map(_use, processes))
    finally:
        for process in processes:
            process.stop()
    ips = [ip for ip, _ in used]
    assert all(result == SCPResult.RC_OK for _, result in used), used
    assert len(set(ips)) == len(ips), ips  # no two services share a board address
    assert ips[2] == base.rsplit(".", 1)[0] + ".1"  # the given base was used
