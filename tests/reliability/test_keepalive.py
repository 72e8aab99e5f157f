"""Keepalive soak, short: 100 jobs held for 40 s with 6 s keepalive intervals and a 1 s
expiry check; no spurious expiry, and the 10 whose keepalives stop expire within one
check period (bench/keepalive_soak.py runs 1,000 jobs for 10 minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.keepalive_soak import soak, start_soak_service

USERS = [("soak1", "soak-pw-1"), ("soak2", "soak-pw-2")]


@pytest.mark.slow
def test_hundred_jobs_kept_alive(tmp_path: Path) -> None:
    service = start_soak_service(tmp_path, interval=6.0, expiry_period=1.0, users=USERS)
    try:
        result = soak(
            service.url, USERS, jobs=100, seconds=40, interval=6.0, expiry_period=1.0,
            stop=10, slack=1.0, threads=8, database=service.config.database_url(),
        )  # fmt: skip
    finally:
        service.stop()
    summary = result.as_dict()
    assert result.keepalive_failures == [], summary
    assert result.spurious_expiries == [], summary
    assert result.late_or_missing == [], summary
    assert result.stopped == result.expired_in_time == 10, summary
    assert 0 <= result.expiry_latency_max <= 2.0, summary
    assert result.keepalives > 900, summary  # ~100 jobs x 40 s / 3 s
    assert result.max_keepalive_gap < 6.0, summary  # the client itself was never late
