"""An optional per-user limit of live jobs (``serve --max-jobs-per-user``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.serve_process import ServeProcess, make_users
from tests.support.http_client import Http


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[ServeProcess]:
    database = f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"
    make_users(database)
    serve = ServeProcess(tmp_path / "data", database)
    serve.start("--max-jobs-per-user", "3")
    try:
        yield serve
    finally:
        serve.stop()


def test_live_jobs_per_user_are_capped(limited: ServeProcess) -> None:
    alice, bob = Http(limited.url), Http(limited.url)
    assert alice.login("alice").status_code == 302
    assert bob.login("bob").status_code == 302
    with ThreadPoolExecutor(8) as pool:  # concurrent creations cannot slip past the limit
        statuses = list(pool.map(lambda _: alice.create(**{"num-boards": 1}), range(8)))
    created = [r for r in statuses if r.status_code == 201]
    refused = [r for r in statuses if r.status_code != 201]
    assert len(created) == 3
    assert {r.status_code for r in refused} == {429}
    assert refused[0].text == "too many live jobs (at most 3 per user): destroy one first"
    assert bob.create(**{"num-boards": 1}).status_code == 201  # others are not affected
    assert alice.delete(created[0].headers["location"]).status_code == 204
    assert alice.create(**{"num-boards": 1}).status_code == 201  # room again
