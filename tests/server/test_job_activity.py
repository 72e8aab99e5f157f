"""JobActivity (operations on a job's boards) and the proxy's Origin rule, in isolation."""

from __future__ import annotations

import threading
import time

import pytest

from pyspalloc.server.api.proxy_route import origin_allowed
from pyspalloc.server.job_activity import JobActivity, JobEnded


def test_end_cancels_running_and_refuses_new_until_forgotten() -> None:
    activity = JobActivity()
    running = activity.start(7, "memory write")
    other = activity.start(8, "memory read")
    assert activity.end(7) == 1
    assert running.cancelled.is_set() and not other.cancelled.is_set()
    with pytest.raises(JobEnded):
        running.check()
    with pytest.raises(JobEnded):
        activity.start(7, "late")
    assert not activity.wait_idle(7, 0.05)  # still running
    threading.Timer(0.1, activity.finish, (running,)).start()
    start = time.monotonic()
    assert activity.wait_idle(7, 5.0)
    assert time.monotonic() - start < 2.0
    activity.forget(7)
    with activity.begin(7, "after release"):  # the caller's store check refuses it now
        assert activity.count(7) == 1
    assert activity.count(7) == 0
    activity.finish(other)


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        (None, "h:8080", (), True),
        ("http://h:8080", "h:8080", (), True),
        ("https://h", "h", (), True),
        ("https://h:443", "h", (), True),
        ("h", "h:8080", (), True),  # spinnman: the bare host name
        ("http://evil.example", "h:8080", (), False),
        ("http://h:9090", "h:8080", (), False),
        ("null", "h:8080", (), False),
        ("file://", "h:8080", (), False),
        ("evil", "h:8080", (), False),
        ("https://portal.example", "h:8080", ("https://portal.example/",), True),
        ("http://h:8080", None, (), False),
    ],
)
def test_origin_rule(
    origin: str | None, host: str | None, allowed: tuple[str, ...], ok: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is ok
