"""Stopping ``pyspalloc serve`` while long polls are held: they are answered, no tracebacks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from tests.reliability.serve_process import ServeProcess, make_users
from tests.support.http_client import Http
from tests.support.waiting import wait_for


def test_shutdown_releases_held_long_polls(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    service = ServeProcess(tmp_path, database).start()
    try:
        client = Http(service.url)
        assert client.login("alice").status_code == 302
        job_url, _ = client.ready_job()
        answers: list[int | str] = []

        def poll(url: str) -> None:
            try:
                reply = client.http.get(url, params={"wait": "true"}, timeout=60)
                answers.append(reply.status_code)
            except requests.RequestException as error:
                answers.append(type(error).__name__)

        polls = [
            threading.Thread(target=poll, args=(url,))
            for url in (job_url, client.srv + "jobs", client.srv + "machines/spin24")
        ]
        for thread in polls:
            thread.start()
        time.sleep(1.0)  # the service now holds all three
        assert answers == []
        started = time.monotonic()
        service.stop()
        stopped = time.monotonic() - started
        for thread in polls:
            thread.join(10)
        wait_for(lambda: len(answers) == 3, 5)
    finally:
        service.stop()
    output = "\n".join(service.lines)
    assert "Traceback" not in output and "CancelledError" not in output, output
    assert answers == [200, 200, 200], (answers, output)
    assert stopped < 5.0, (stopped, output)  # not the 5 s graceful-shutdown timeout
