"""The proxy websocket client against the real service and its virtual boards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.client.client import SpallocClient
from pyspalloc.client.job import SpallocJob
from pyspalloc.client.proxy.calls import ProxyError
from pyspalloc.client.proxy.connection import ProxyConnection
from pyspalloc.client.proxy.connections import SpallocSCPConnection
from pyspalloc.client.session import Session
from pyspalloc.exceptions import SpinnmanIOException, SpinnmanTimeoutException
from pyspalloc.transceiver.engine import EngineOptions, make_request, scp_call
from pyspalloc.transceiver.transceiver import Transceiver
from pyspalloc.wire.consts import SCP_PORT
from pyspalloc.wire.proxy import CloseRequest
from pyspalloc.wire.scp import SCPCommand, SCPResult
from tests.client import proxy_support as support
from tests.client.proxy_support import PASSWORD, USER, ready_job, virtual_board
from tests.support.waiting import eventually

# fixtures shared with the connection and transceiver tests
proxy_service = support.proxy_service
proxy_client = support.proxy_client
job = support.job
fresh_job = support.fresh_job

ADDRESS = 0x60000000
FOUR_MB = 4 * 1024 * 1024


def test_fixture_job_is_ready_with_one_board(job: SpallocJob, proxy_service: Any) -> None:
    connections = job.get_connections()
    assert list(connections) == [(0, 0)]
    assert virtual_board(proxy_service, connections[0, 0]).booted


def proxy_of(job: SpallocJob) -> ProxyConnection:
    """The job's ProxyConnection (the job opens it on first use)."""
    proxy = job.get_proxy()  # type: ignore[attr-defined]
    assert isinstance(proxy, ProxyConnection)
    return proxy


def test_open_channel_and_ver(job: SpallocJob) -> None:
    connection = job.connect_to_board(0, 0)
    try:
        reply = scp_call(connection, make_request(connection, 0, 0, 0, SCPCommand.VER))
        assert reply.result == SCPResult.RC_OK
        assert b"SC&MP" in reply.payload
        assert connection.remote_ip == job.get_connections()[0, 0]
        assert connection.is_connected()
    finally:
        connection.close()
    assert not connection.is_connected()
    connection.close()  # a second close does nothing
    with pytest.raises(SpinnmanIOException):
        connection.send(b"\x00\x00")
    with pytest.raises(SpinnmanIOException):
        connection.receive(0.1)


def test_close_answered_with_zero_is_not_an_error(job: SpallocJob) -> None:
    connection = job.connect_to_board(0, 0)
    channel = connection.channel
    proxy = proxy_of(job)
    channel_id = channel.channel_id
    assert channel_id is not None
    # Close it behind the connection's back; its own CLOSE is then answered with 0.
    reply = proxy._call(
        lambda corr: CloseRequest(corr, channel_id).to_bytes(), lambda _: None, "CLOSE", 5.0
    )
    assert getattr(reply, "channel_id", None) == channel_id
    channel.close()
    assert not channel.is_open


def test_error_frame_carries_the_server_text(job: SpallocJob) -> None:
    with pytest.raises(ProxyError, match="unrecognised ethernet chip") as caught:
        job.connect_to_board(8, 4)
    assert isinstance(caught.value, SpinnmanIOException)
    # the websocket is still fine afterwards
    connection = job.connect_to_board(0, 0)
    try:
        assert scp_call(connection, make_request(connection, 0, 0, 0, SCPCommand.VER))
    finally:
        connection.close()


def test_4mb_write_and_read_over_the_proxy(job: SpallocJob) -> None:
    data = os.urandom(FOUR_MB)
    transceiver = Transceiver([job.connect_to_board(0, 0)])
    try:
        started = time.perf_counter()
        written, _ = transceiver.write_memory(0, 0, ADDRESS, data)
        middle = time.perf_counter()
        back = transceiver.read_memory(0, 0, ADDRESS, len(data))
        ended = time.perf_counter()
    finally:
        transceiver.close()
    assert written == len(data)
    assert back == data
    print(
        f"proxy 4 MB: write {len(data) / (middle - started) / 1e6:.2f} MB/s, "
        f"read {len(data) / (ended - middle) / 1e6:.2f} MB/s"
    )


def test_transfer_survives_websocket_drops(fresh_job: SpallocJob) -> None:
    transceiver = Transceiver([fresh_job.connect_to_board(0, 0)], timeout=0.5)
    proxy = proxy_of(fresh_job)
    data = os.urandom(FOUR_MB)
    stop = threading.Event()
    drops = 0

    def dropper() -> None:
        nonlocal drops
        while not stop.wait(0.7):
            proxy.drop_websocket()
            drops += 1

    thread = threading.Thread(target=dropper, daemon=True)
    thread.start()
    try:
        transceiver.write_memory(0, 0, ADDRESS, data)
        back = transceiver.read_memory(0, 0, ADDRESS, len(data))
    finally:
        stop.set()
        thread.join(5)
    try:
        assert drops >= 2
        assert proxy.reconnects >= 2
        assert back == data
        # the channel has a new server id and still works
        assert transceiver.get_scamp_version(0, 0).version_string
    finally:
        transceiver.close()


def test_reconnection_reopens_every_channel(fresh_job: SpallocJob) -> None:
    first = fresh_job.connect_to_board(0, 0)
    boot = fresh_job.connect_for_booting()
    proxy = proxy_of(fresh_job)
    before = {first.channel.channel_id, boot.channel.channel_id}
    proxy.drop_websocket()
    eventually(
        lambda: (
            proxy.reconnects == 1
            and first.channel.channel_id is not None
            and boot.channel.channel_id is not None
        ),
        what="the channels to reopen",
    )
    assert {first.channel.channel_id, boot.channel.channel_id}.isdisjoint(before)
    assert scp_call(first, make_request(first, 0, 0, 0, SCPCommand.VER)).result == SCPResult.RC_OK
    first.close()
    boot.close()


def test_job_destroyed_makes_every_call_fail_not_hang(proxy_client: Any) -> None:
    doomed = ready_job(proxy_client)
    connection = doomed.connect_to_board(0, 0)
    proxy = proxy_of(doomed)
    proxy.reconnect_attempts = 3
    doomed.destroy("testing the proxy after destroy")
    started = time.monotonic()
    with pytest.raises(SpinnmanIOException):
        connection.receive(30.0)
    assert time.monotonic() - started < 20.0
    assert proxy.is_dead
    with pytest.raises(SpinnmanIOException):
        proxy.open_channel(0, 0, SCP_PORT)
    with pytest.raises(SpinnmanIOException):
        connection.send(b"\x00\x00")


def test_close_releases_everything(fresh_job: SpallocJob) -> None:
    connection = fresh_job.connect_to_board(0, 0)
    proxy = proxy_of(fresh_job)
    proxy.close()
    assert proxy.is_dead
    reader, pinger = proxy.threads
    assert not reader.is_alive()
    assert not pinger.is_alive()
    with pytest.raises(SpinnmanIOException):
        connection.receive(None)  # no timeout: must still return at once
    with pytest.raises(SpinnmanIOException):
        proxy.open_unbound()
    proxy.close()  # idempotent


def test_receive_times_out(job: SpallocJob) -> None:
    connection = job.connect_to_board(0, 0)
    try:
        started = time.monotonic()
        with pytest.raises(SpinnmanTimeoutException):
            connection.receive(0.2)
        assert 0.15 < time.monotonic() - started < 2.0
        assert not connection.is_ready_to_receive(0.05)
    finally:
        connection.close()


def test_lossy_board_still_gives_exact_data(fresh_job: SpallocJob, proxy_service: Any) -> None:
    board = virtual_board(proxy_service, fresh_job.get_connections()[0, 0])
    data = os.urandom(256 * 1024)
    transceiver = Transceiver([fresh_job.connect_to_board(0, 0)], timeout=0.25, retries=20)
    board.set_fault(loss=0.05)
    try:
        transceiver.write_memory(0, 0, ADDRESS, data)
        back = transceiver.read_memory(0, 0, ADDRESS, len(data))
    finally:
        board.set_fault(loss=0.0)
        transceiver.close()
    assert back == data


SERVICE_SCRIPT = """
import sys, time, pathlib
from tests.client.proxy_support import start_test_service
service = start_test_service(pathlib.Path(sys.argv[1]))
print(service.url, flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def service_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A service in its own process (so that it can be frozen with SIGSTOP)."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http"), "the service process did not start"
        yield process, url
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(10)


def drain(connection: SpallocSCPConnection) -> None:
    """Throw away whatever arrives on ``connection`` until it is quiet for 0.3 s."""
    for _ in range(100):
        try:
            connection.receive(0.3)
        except SpinnmanTimeoutException:
            return


def freeze(process: subprocess.Popen[str]) -> None:
    """SIGSTOP ``process`` and wait until every one of its threads has stopped.

    ``kill`` returns before a busy thread has stopped, so without the wait a request
    sent at once may still be answered.
    """
    process.send_signal(signal.SIGSTOP)
    tasks = Path(f"/proc/{process.pid}/task")
    if not tasks.is_dir():
        time.sleep(0.2)
        return

    def stopped() -> bool:
        for stat in tasks.glob("*/stat"):
            try:
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue  # a thread that has just ended
            if state not in ("T", "t"):
                return False
        return True

    eventually(stopped, timeout=5.0, what="the service process to stop")


def test_every_call_times_out_when_the_server_stops_answering(
    service_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = service_process
    with SpallocClient(url, USER, PASSWORD) as client:
        stuck = ready_job(client)
        connection = stuck.connect_to_board(0, 0)
        proxy = proxy_of(stuck)
        proxy.call_timeout = 1.0
        assert scp_call(connection, make_request(connection, 0, 0, 0, SCPCommand.VER))
        drain(connection)  # a resent VER (on a busy machine) may have a late reply
        freeze(process)
        try:
            limits = {
                "OPEN": lambda: proxy.open_channel(0, 0, SCP_PORT),
                "OPEN_UNBOUND": lambda: proxy.open_unbound(timeout=0.5),
                "receive": lambda: connection.receive(0.3),
                "SCP": lambda: scp_call(
                    connection,
                    make_request(connection, 0, 0, 0, SCPCommand.VER),
                    EngineOptions(timeout=0.2, retries=2),
                ),
            }
            for what, call in limits.items():
                started = time.monotonic()
                try:
                    result = call()
                except SpinnmanTimeoutException:
                    pass
                else:
                    pytest.fail(f"{what} returned {result!r} from a frozen service")
                assert time.monotonic() - started < 3.0, what
            started = time.monotonic()
            connection.close()  # CLOSE times out: logged, not raised
            assert time.monotonic() - started < 3.0
        finally:
            process.send_signal(signal.SIGCONT)
        # the same websocket works again once the server does
        again = stuck.connect_to_board(0, 0)
        assert scp_call(again, make_request(again, 0, 0, 0, SCPCommand.VER))
        started = time.monotonic()
        stuck.close()  # type: ignore[attr-defined]
        assert time.monotonic() - started < 5.0
        assert proxy.is_dead


def test_reconnection_renews_an_expired_session(fresh_job: SpallocJob) -> None:
    import requests

    session = fresh_job.session  # type: ignore[attr-defined]
    connection = fresh_job.connect_to_board(0, 0)
    proxy = proxy_of(fresh_job)
    cookies, headers = session.credentials
    # end the session on the server, as an expiry or a restart would
    requests.post(
        session.service_url + "system/perform_logout",
        cookies=cookies,
        headers=headers,
        allow_redirects=False,
        timeout=10,
    )
    proxy.drop_websocket()
    eventually(
        lambda: proxy.reconnects == 1 and connection.channel.channel_id is not None,
        what="the reconnection with a renewed session",
    )
    assert session.credentials[0] != cookies
    reply = scp_call(connection, make_request(connection, 0, 0, 0, SCPCommand.VER))
    assert reply.result == SCPResult.RC_OK
    connection.close()


def test_pings_keep_an_idle_websocket_heard(job: SpallocJob) -> None:
    url = job.get_proxy_url()  # type: ignore[attr-defined]
    proxy = ProxyConnection(url, session=job.session, ping_interval=0.3)  # type: ignore[attr-defined]
    try:
        link = proxy.link
        assert link is not None
        first = link.last_heard
        eventually(lambda: link.last_heard > first, what="a pong")
        time.sleep(1.2)  # more than 3 intervals: only pongs keep it from being dropped
        assert proxy.reconnects == 0 and proxy.is_connected
    finally:
        proxy.close()


def test_channels_to_several_boards_share_one_websocket(proxy_client: Any) -> None:
    triad = ready_job(proxy_client, boards=3)
    try:
        boards = triad.get_connections()
        assert len(boards) == 3
        connections = {xy: triad.connect_to_board(*xy) for xy in boards}
        assert len({c.channel.channel_id for c in connections.values()}) == 3
        data = {xy: os.urandom(5000) for xy in boards}
        transceiver = Transceiver(list(connections.values()))
        try:
            for (x, y), payload in data.items():
                assert transceiver.get_scamp_version(x, y).x == x
                transceiver.write_memory(x, y, ADDRESS, payload)
            for (x, y), payload in data.items():
                assert transceiver.read_memory(x, y, ADDRESS, len(payload)) == payload
        finally:
            transceiver.close()
    finally:
        triad.destroy()


def test_concurrent_transfers_on_separate_channels(job: SpallocJob) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pyspalloc.transceiver import memory

    def transfer(index: int) -> bool:
        connection = job.connect_to_board(0, 0)
        try:
            data = os.urandom(128 * 1024)
            address = ADDRESS + 0x100000 * (index + 1)
            memory.write_memory(connection, 0, 0, address, data)
            return memory.read_memory(connection, 0, 0, address, len(data)) == data
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(transfer, range(4)))


def test_proxy_with_a_stale_session_and_a_renewal(job: SpallocJob) -> None:
    # the one handshake path, Session.websocket, maps the wss:// proxy-ref of this
    # plain-HTTP test service to ws://
    url = job.get_proxy_url()  # type: ignore[attr-defined]
    service_url = job.session.service_url  # type: ignore[attr-defined]
    stale = ({"JSESSIONID": "not-a-session"}, {})
    renewals: list[int] = []

    class CountingSession(Session):
        def renew(self) -> dict[str, Any]:
            renewals.append(1)
            return super().renew()

    started = time.monotonic()
    with pytest.raises(SpinnmanIOException, match="HTTP 403"):
        ProxyConnection(url, session=Session(service_url, session_credentials=stale))
    assert time.monotonic() - started < 5.0, "a refused handshake is not retried"

    session = CountingSession(service_url, USER, PASSWORD, session_credentials=stale)
    with ProxyConnection(url, session=session) as proxy:
        assert renewals == [1]
        connection = proxy.open_channel(0, 0, SCP_PORT)
        assert connection.channel_id is not None
