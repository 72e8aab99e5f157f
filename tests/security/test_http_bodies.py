"""Request bodies as a weapon, against a live ``pyspalloc serve`` (real sockets).

* 300 MiB POSTs (anonymous and logged in, with Content-Length and chunked): the service
  answers without reading them (403 or 413), grows by < 100 MB, and a bystander's
  requests are answered within 1 s meanwhile. Before the fix the anonymous 300 MiB POST
  to ``jobs`` was read whole (about 600 MB) before the 403.
* Deep JSON: 400, and the keep-alive connection stays usable (before: 500, dropped).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.serve_process import ServeProcess, make_users
from tests.security.http_attack import MIB, Bystander, peak_kib, post_body, rss_kib
from tests.support.http_client import Http, login

JOBS = "/spalloc/srv/spalloc/jobs"
SDRAM = 0x70000000
#: times each oversize POST is sent
REPEAT = 5
#: the budget of the service's memory growth under one attack (bytes)
GROWTH_LIMIT = 100 * 1000 * 1000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One ``pyspalloc serve`` subprocess for the module (memory measured from outside)."""
    tmp = tmp_path_factory.mktemp("bodies")
    database = f"sqlite:///{tmp / 'spalloc.sqlite3'}"
    make_users(database)
    service = ServeProcess(tmp, database).start()
    try:
        yield service
    finally:
        service.stop()


def _login(service: ServeProcess, user: str) -> Http:
    return login(service, user)


def _session_headers(client: Http) -> dict[str, str]:
    cookie = f"JSESSIONID={client.session_id}"
    return {"Cookie": cookie, **client.csrf}


def _attack(
    service: ServeProcess, path: str, size: int, headers: dict[str, str], chunked: bool
) -> tuple[int, int, float, int]:
    """Run the POST :data:`REPEAT` times, one after the other, with a bystander watching
    for at least a second; return the last status, the most bytes one POST got out, the
    bystander's worst latency and the service's peak memory growth (bytes)."""
    bob = _login(service, "bob")  # before measuring: a login runs argon2 (64 MiB)
    Path(f"/proc/{service.pid}/clear_refs").write_text("5")  # reset the peak (VmHWM)
    before = rss_kib(service.pid)
    started = time.monotonic()
    with Bystander(bob.srv + "machines", bob.http) as bystander:
        results = [
            post_body("127.0.0.1", service.port, path, size, headers, chunked=chunked)
            for _ in range(REPEAT)
        ]
        time.sleep(max(0.0, started + 1.0 - time.monotonic()))
        # the service still answers after the attack, and within the bystander's budget
        assert bob.get("machines").status_code == 200
    growth = (peak_kib(service.pid) - before) * 1024
    assert not bystander.failures, bystander.failures
    assert len(bystander.latencies) >= 5, "the bystander made too few requests"
    statuses = {r.status for r in results}
    sent = max(r.sent for r in results)
    print(
        f"{path} {size // MIB} MiB chunked={chunked} x{REPEAT}: {statuses}, at most "
        f"{sent / MIB:.1f} MiB sent, {sum(r.seconds for r in results):.2f} s in all; "
        f"growth {growth / 1e6:.1f} MB; bystander worst {bystander.worst * 1000:.0f} ms "
        f"over {len(bystander.latencies)} requests"
    )
    assert len(statuses) == 1, statuses
    return results[-1].status, sent, bystander.worst, growth


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_anonymous_300_mib_post_is_refused_before_it_is_read(
    served: ServeProcess, chunked: bool
) -> None:
    status, sent, worst, growth = _attack(served, JOBS, 300 * MIB, {}, chunked)
    # Content-Length over the limit: 413 at once; chunked: refused on the headers (no
    # session, so no CSRF token), before the body is read
    assert status == (403 if chunked else 413)
    assert sent < 100 * MIB
    assert growth < GROWTH_LIMIT
    assert worst < 1.0


@pytest.mark.parametrize(
    ("path", "size", "chunked", "expected"),
    [
        (JOBS, 300 * MIB, False, 413),
        (JOBS, 300 * MIB, True, 413),  # counted as it arrives: refused past 64 KiB
        (JOBS + "/1/memory?x=0&y=0&address=1879048192", 129 * MIB, False, 413),
        # the job is checked before the body is read: no such job, nothing read
        (JOBS + "/999999/memory?x=0&y=0&address=1879048192", 300 * MIB, True, 404),
    ],
    ids=["jobs-content-length", "jobs-chunked", "memory-over-128-mib", "memory-no-job"],
)
def test_logged_in_oversize_posts_are_refused_unbuffered(
    served: ServeProcess, path: str, size: int, chunked: bool, expected: int
) -> None:
    alice = _login(served, "alice")
    status, sent, worst, growth = _attack(served, path, size, _session_headers(alice), chunked)
    assert status == expected
    assert sent < 100 * MIB
    assert growth < GROWTH_LIMIT
    assert worst < 1.0
    # the limit is stated in the answer
    answer = alice.post("jobs", data=b"[" * (65 * 1024), headers={"Content-Type": "a/json"})
    assert answer.status_code == 413
    assert answer.text == "request body too large: at most 65536 bytes"


def _raw_request(sock: socket.socket, path: str, body: bytes, headers: dict[str, str]) -> int:
    """Send one POST on ``sock`` and read its whole response; return the status."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    reply = b""
    while b"\r\n\r\n" not in reply:
        data = sock.recv(65536)
        assert data, "the service closed the connection"
        reply += data
    header, _, rest = reply.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"
    )
    while len(rest) < length:
        data = sock.recv(65536)
        assert data, "the service closed the connection mid-response"
        rest += data
    return int(lines[0].split()[1])


@pytest.mark.parametrize("where", ["jobs", "machine/power", "report-issue"])
def test_deep_json_is_a_400_and_the_connection_lives(served: ServeProcess, where: str) -> None:
    alice = _login(served, "alice")
    created = alice.create(**{"num-boards": 1})
    assert created.status_code == 201, created.text
    job = created.headers["location"]
    url = alice.srv + "jobs" if where == "jobs" else f"{job}/{where}"
    deep = b"[" * 30_000 + b"]" * 30_000  # 60,000 bytes: under the size limit
    try:
        # one requests.Session (keep-alive) throughout
        answer = alice.post(url, data=deep, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        assert answer.text == "request body is not valid JSON: nested too deeply"
        hundred_thousand = alice.post(url, data=b"[" * 100_000 + b"]" * 100_000)
        assert hundred_thousand.status_code in (400, 413), hundred_thousand.text
        assert alice.get("machines").status_code == 200
        # on one raw connection: it answers again after the 400
        target = "/" + url.split("/", 3)[3]
        headers = {**_session_headers(alice), "Content-Type": "application/json"}
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            assert _raw_request(sock, target, deep, headers) == 400
            fine = json.dumps({"power": "OFF"} if where == "machine/power" else {}).encode()
            assert _raw_request(sock, target, fine, headers) in (202, 204, 400)
    finally:
        alice.delete(job, params={"reason": "test over"})


def test_memory_write_streams_in_pieces_and_lands_whole(vservice: Any) -> None:
    """A memory write larger than one piece (1 MiB), with Content-Length and chunked,
    reads back byte for byte from the virtual board."""
    alice = login(vservice, "alice")
    url, _ = alice.ready_job(**{"num-boards": 1})
    data = os.urandom(2 * MIB + 4321)
    try:
        for chunked in (False, True):
            address = SDRAM + (4 * MIB if chunked else 0)
            body: Any = iter([data[i : i + 100_000] for i in range(0, len(data), 100_000)])
            posted = alice.post(
                url + "/memory",
                params={"x": 0, "y": 0, "address": address},
                data=body if chunked else data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert posted.status_code == 202, posted.text
            read = alice.get(
                url + "/memory", params={"x": 0, "y": 0, "address": address, "size": len(data)}
            )
            assert read.status_code == 200 and read.content == data, chunked
        past_the_end = alice.post(
            url + "/memory", params={"x": 0, "y": 0, "address": 2**32 - 16}, data=b"x" * 32
        )
        assert past_the_end.status_code == 400
    finally:
        alice.delete(url, params={"reason": "test over"})
