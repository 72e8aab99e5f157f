"""``kill -9`` of ``pyspalloc serve`` holding 100 live jobs, then a restart on the same
SQLite file: jobs, board assignments, users, sessions and tokens are all back, no board
belongs to two jobs, and a SpallocClient that was using the service carries on. Also: the
service's own log output during a login and token flow holds no secret."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pyspalloc import SpallocClient, SpallocState
from pyspalloc.server.auth import digest, new_secret
from pyspalloc.server.store import Store
from tests.reliability.serve_process import PYSPALLOC, ServeProcess, make_users
from tests.support.http_client import PASSWORDS, Http
from tests.support.waiting import wait_for

JOBS = 100


def _jobs_view(client: Http, urls: list[str]) -> dict[str, tuple[str, tuple[Any, ...]]]:
    out = {}
    for url in urls:
        state = client.state(url)
        machine = client.get(url + "/machine")
        boards = tuple(map(tuple, machine.json()["boards"])) if machine.status_code == 200 else ()
        out[url.rsplit("/", 1)[1]] = (state, boards)
    return out


def _db_boards(path: Path) -> list[tuple[int, int]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT id, job_id FROM boards WHERE job_id IS NOT NULL"))


@pytest.mark.slow
def test_kill9_with_100_jobs_then_restart(tmp_path: Path) -> None:
    db_file = tmp_path / "spalloc.sqlite3"
    database = f"sqlite:///{db_file}"
    make_users(database)
    store = Store(database)
    token = new_secret(32)
    try:
        user = store.get_user("bob")
        assert user is not None
        store.add_token(user.id, digest(token))
    finally:
        store.close()

    service = ServeProcess(tmp_path, database).start()
    try:
        client = SpallocClient(service.url, "bob", PASSWORDS["bob"])
        job = client.create_job(1, keepalive=300)
        wait_for(lambda: job.get_state() == SpallocState.READY, 30)
        alice = Http(service.url)
        assert alice.login("alice").status_code == 302
        urls = []
        for _ in range(JOBS - 1):
            created = alice.create(**{"num-boards": 1, "keepalive-interval": "PT300S"})
            assert created.status_code == 201, created.text
            urls.append(created.headers["location"])
        wait_for(lambda: len(_db_boards(db_file)) == 24, 60, 0.2)
        before = _jobs_view(alice, urls)
        states = Counter(state for state, _ in before.values())
        assert states == {"READY": 23, "QUEUED": JOBS - 24}, states
        bob_boards = job.get_connections()
        db_before = sorted(_db_boards(db_file))
        assert len(db_before) == 24

        service.kill9()
        restarted = ServeProcess(tmp_path, database, port=service.port).start()
        try:
            after = _jobs_view(alice, urls)  # alice's old session and CSRF still work
            assert after == before
            assert sorted(_db_boards(db_file)) == db_before
            owners = Counter(job_id for _, job_id in _db_boards(db_file))
            assert len(db_before) == len({b for b, _ in db_before})  # one job per board
            assert all(n == 1 for n in owners.values())
            # every board given out once via REST too
            boards = [b for _, bs in after.values() for b in bs]
            assert len(boards) == len(set(boards)) == 23
            # bob's SpallocClient carries on (renewing its session if it must)
            assert job.get_state() == SpallocState.READY
            assert job.get_connections() == bob_boards
            assert not job.keepalive_failed
            # lose bob's sessions: his client must log in again by itself
            with sqlite3.connect(db_file) as conn:
                uid = conn.execute("SELECT id FROM users WHERE name = 'bob'").fetchone()[0]
                gone = conn.execute("DELETE FROM sessions WHERE user_id = ?", (uid,)).rowcount
            assert gone >= 1
            second = client.create_job(1, keepalive=300)
            assert second.get_state() in (SpallocState.QUEUED, SpallocState.READY)
            second.destroy("done")
            # users and the token are back
            assert Http(restarted.url).login("rita").status_code == 302
            bearer = Http(restarted.url)
            bearer.bearer = token
            assert bearer.get("").status_code == 200
            assert bearer.get("jobs").status_code == 200
            # freeing a board lets a queued job have it, and only it
            assert alice.delete(urls[0], params={"reason": "done"}).status_code == 204
            wait_for(lambda: sum(alice.state(u) == "READY" for u in urls) == 23, 30, 0.2)
            owners = Counter(job_id for _, job_id in _db_boards(db_file))
            assert all(n == 1 for n in owners.values())
            job.destroy("done")
            client.close()
        finally:
            restarted.stop()
    finally:
        service.stop()


def test_service_logs_hold_no_secret(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    service = ServeProcess(tmp_path, database).start("--debug")
    try:
        secrets: list[str] = list(PASSWORDS.values())
        alice = Http(service.url)
        page = alice.http.get(service.url + "system/login.html")
        secrets.append(alice.session_id or "")
        assert alice.login("alice").status_code == 302
        assert Http(service.url).login("bob", "bob-wrong-password").status_code == 401
        secrets += ["bob-wrong-password", alice.session_id or "", *alice.csrf.values()]
        created = alice.create(**{"num-boards": 1})
        assert created.status_code == 201
        assert alice.put(created.headers["location"] + "/keepalive", data="x").status_code == 200
        out = alice.post(service.url + "system/perform_logout")
        assert out.status_code == 302
        assert page.status_code == 200
        import subprocess

        made = subprocess.run(
            [*PYSPALLOC, "user", "token", "bob",
             "--database", database],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        token = made.stdout.strip().splitlines()[-1]
        assert made.returncode == 0 and len(token) > 20
        secrets.append(token)
        bearer = Http(service.url)
        bearer.bearer = token
        assert bearer.get("").status_code == 200
        wrong = Http(service.url)
        wrong.bearer = "not-" + token
        assert wrong.get("").status_code == 401
        secrets.append("not-" + token)
    finally:
        service.stop()
    log = "\n".join(service.lines)
    assert f"Spalloc service at {service.url}" in log, log  # the capture works
    # (with --debug the service logs no per-request lines: no access log, no auth chatter)
    leaked = [s for s in secrets if s and s in log]
    assert leaked == [], "secrets in the service's log"
