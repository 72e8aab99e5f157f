"""Password hashing as a weapon (issue 11): bursts of Basic requests against a live
``pyspalloc serve`` process, with its memory measured, a bystander timed, and the account
lock, pacing and per-address limits checked.

Memory is the service process's resident set: its peak (``VmHWM``, reset through
``/proc/PID/clear_refs`` before the burst, and sampled every 10 ms as well) less its
resident set just before the burst.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from pyspalloc.server.store import Store
from tests.reliability.serve_process import ServeProcess, make_users
from tests.support.http_client import PASSWORDS, Http, login

BURST = 30
MB = 1 << 20


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class PeakRss:
    """The growth of a process's resident set over a block: peak less the start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _status_kib(self.pid, "VmRSS"))

    def __enter__(self) -> PeakRss:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM
            self._hwm = True
        except OSError:
            self._hwm = False
        self.start = _status_kib(self.pid, "VmRSS")
        self.peak = self.start
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._hwm:
            self.peak = max(self.peak, _status_kib(self.pid, "VmHWM"))

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) * 1024 / MB


class Bystander:
    """A logged-in user reading the job list every 50 ms; the slowest answer."""

    def __init__(self, client: Http) -> None:
        self.client = client
        self.slowest = 0.0
        self.answers = 0
        self.statuses: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            start = time.monotonic()
            status = self.client.get("jobs").status_code
            self.slowest = max(self.slowest, time.monotonic() - start)
            self.statuses.add(status)
            self.answers += 1

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _serve(tmp_path: Path) -> ServeProcess:
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    return ServeProcess(tmp_path / "data", database).start()


def _basic(url: str, user: str, password: str) -> int:
    try:
        return requests.get(url, auth=(user, password), timeout=120).status_code
    except requests.RequestException:
        return -1


def _audit(lines: list[str]) -> list[dict[str, Any]]:
    found = []
    for line in list(lines):
        start = line.find('{"event"')
        if "pyspalloc.audit" in line and start >= 0:
            found.append(json.loads(line[start:]))
    return found


def test_wrong_password_burst_is_bounded_and_the_lock_holds(tmp_path: Path) -> None:
    serve = _serve(tmp_path)
    try:
        url = serve.url + "srv/spalloc/"
        bystander = login(serve, "alice")
        start = threading.Barrier(BURST - 1)

        def guess(n: int) -> int:
            if n == BURST - 1:  # the right password, once the wrong ones are under way
                time.sleep(0.5)
                return _basic(url, "bob", PASSWORDS["bob"])
            start.wait(10)
            return _basic(url, "bob", f"wrong-{n}")

        with (
            Bystander(bystander) as watch,
            PeakRss(serve.pid) as memory,
            ThreadPoolExecutor(BURST) as pool,
        ):
            statuses = list(pool.map(guess, range(BURST)))
        right = statuses[-1]
        guessed = [
            e
            for e in _audit(serve.lines)
            if e["event"] == "login_failed" and e["user"] == "bob" and e["reason"] == "bad_password"
        ]
        print(
            f"statuses {sorted(statuses)}; +{memory.growth_mb:.0f} MB; bystander slowest "
            f"{watch.slowest * 1000:.0f} ms over {watch.answers}; hashed {len(guessed)}"
        )
        assert set(statuses) <= {401, 503}, statuses
        assert right != 200, "the right password got through a burst of guesses"
        assert len(guessed) <= 5, "more guesses were hashed than the account lock allows"
        assert memory.growth_mb < 100, memory.growth_mb
        assert watch.statuses == {200} and watch.answers >= 5
        assert watch.slowest < 1.0, watch.slowest
    finally:
        serve.stop()


def test_valid_basic_burst_hashes_once(tmp_path: Path) -> None:
    serve = _serve(tmp_path)
    try:
        url = serve.url + "srv/spalloc/jobs"
        bystander = login(serve, "bob")
        start = threading.Barrier(BURST)

        def call(_: int) -> int:
            start.wait(10)
            return _basic(url, "alice", PASSWORDS["alice"])

        with Bystander(bystander) as watch, PeakRss(serve.pid) as memory:
            with ThreadPoolExecutor(BURST) as pool:
                statuses = list(pool.map(call, range(BURST)))
            again = [_basic(url, "alice", PASSWORDS["alice"]) for _ in range(10)]
        hashed = [
            e
            for e in _audit(serve.lines)
            if e["event"] == "login" and e["user"] == "alice" and e["method"] == "basic"
        ]
        print(
            f"+{memory.growth_mb:.0f} MB; bystander slowest {watch.slowest * 1000:.0f} ms; "
            f"alice hashed {len(hashed)} times for {BURST + 10} requests"
        )
        assert statuses == [200] * BURST and again == [200] * 10
        assert memory.growth_mb < 100, memory.growth_mb
        assert watch.statuses == {200}
        assert watch.slowest < 1.0, watch.slowest
        assert len(hashed) == 1
    finally:
        serve.stop()


def _timed(url: str, user: str, password: str) -> float:
    start = time.monotonic()
    assert _basic(url, user, password) == 401
    return time.monotonic() - start


def test_locked_or_unknown_accounts_answer_no_faster_than_a_wrong_password(
    make_service: Any,
) -> None:
    service = make_service(max_login_failures=3, account_lock_duration=60.0)
    url = service.url + "srv/spalloc/"
    wrong = [_timed(url, name, "not-it") for name in ("root", "rita", "root", "rita")]
    for n in range(3):
        _timed(url, "bob", f"guess-{n}")
    locked = [_timed(url, "bob", p) for p in ("guess-9", PASSWORDS["bob"], "guess-10")]
    unknown = [_timed(url, "nobody", "x"), _timed(url, "nobody-else", "y")]
    print(f"wrong {wrong}; locked {locked}; unknown {unknown}")
    assert min(locked + unknown) >= 0.5 * statistics.median(wrong), (wrong, locked, unknown)


def test_a_stranger_locks_an_account_for_a_minute_at_most(make_service: Any) -> None:
    service = make_service()  # the default limits
    for n in range(5):
        assert Http(service.url).login("bob", f"guess-{n}").status_code == 401
    assert Http(service.url).login("bob").status_code == 401  # locked
    store = Store(service.config.database_url())
    try:
        bob = store.get_user("bob")
    finally:
        store.close()
    assert bob is not None and 0 < bob.locked_until - time.time() <= 61.0


def test_lock_is_short_and_sessions_survive_it(make_service: Any) -> None:
    service = make_service(max_login_failures=3, account_lock_duration=2.0)
    bob = login(service, "bob")
    for n in range(3):
        assert Http(service.url).login("bob", f"guess-{n}").status_code == 401
    assert Http(service.url).login("bob").status_code == 401  # locked
    assert bob.get("jobs").status_code == 200  # an open session is not locked out
    time.sleep(2.2)
    assert Http(service.url).login("bob").status_code == 302


def test_address_limit_behind_a_trusted_proxy_hits_only_the_attacker(make_service: Any) -> None:
    service = make_service(
        trusted_proxies=("127.0.0.1",), max_ip_failures=4, ip_failure_window=60.0
    )
    url = service.url + "srv/spalloc/"

    def basic(user: str, password: str, client: str) -> int:
        return requests.get(
            url, auth=(user, password), headers={"X-Forwarded-For": client}, timeout=30
        ).status_code

    attacker = "203.0.113.9"
    for user in ("root", "rita", "nobody", "bob"):
        assert basic(user, "guess", attacker) == 401
    # the attacker's address has used its attempts: even a right password is refused
    assert basic("rita", PASSWORDS["rita"], attacker) == 401
    # other clients behind the same proxy log in (forged hops to the left are ignored)
    assert basic("alice", PASSWORDS["alice"], "198.51.100.7") == 200
    assert basic("rita", PASSWORDS["rita"], f"{attacker}, 198.51.100.8") == 200


def test_serve_trusted_proxy_option_names_the_client_in_limits_and_audit(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    serve = ServeProcess(tmp_path / "data", database).start("--trusted-proxy", "127.0.0.1")
    try:
        response = requests.get(
            serve.url + "srv/spalloc/",
            auth=("bob", "guess"),
            headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.7"},
            timeout=30,
        )
        assert response.status_code == 401
        time.sleep(0.2)
    finally:
        serve.stop()
    failed = [e for e in _audit(serve.lines) if e["event"] == "login_failed"]
    assert [(e["user"], e["address"]) for e in failed] == [("bob", "198.51.100.7")]
