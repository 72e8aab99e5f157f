"""Smoke tests: every benchmark runs end to end with tiny sizes (no timing assertions).

The contenders that need peer packages (spinnman 1!7.3.0, spalloc-server 1!7.0.0,
spalloc 1!7.4.1) run in the ``interop`` variants, skipped when their cached venvs cannot
be made (unless ``PYSPALLOC_INTEROP_REQUIRED=1``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from bench._rig import SPINNMAN

from bench import allocation_churn, proxy_cpu, proxy_data_path, scp_round_trips, service_load

pytestmark = pytest.mark.slow


def _peers_or_skip(*requirements: str) -> None:
    from bench._common import peer_python

    try:
        peer_python(*requirements)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        if os.environ.get("PYSPALLOC_INTEROP_REQUIRED") == "1":
            raise
        pytest.skip(f"cannot create venv for {requirements}: {error}")


def _run(module: Any, *argv: str) -> Any:
    parser: Callable[[], Any] = module.parser
    return module.run(parser().parse_args(list(argv)))


def test_proxy_data_path_ours_only(capsys: pytest.CaptureFixture[str]) -> None:
    results = _run(
        proxy_data_path,
        "--size-mb",
        "0.02",
        "--latency-size-mb",
        "0.01",
        "--latency-ms",
        "5",
        "--rounds",
        "1",
        "--skip-spinnman",
    )
    assert set(results) == {"0ms", "5ms", "remote 5ms"}
    assert set(results["0ms"]["mb_s"]) == {"a", "c", "d"}
    assert all(v > 0 for v in results["5ms"]["mb_s"].values())
    out = capsys.readouterr().out
    assert "a/c" in out and "d/a" in out and "load average" in out


@pytest.mark.interop
def test_proxy_data_path_with_spinnman() -> None:
    _peers_or_skip(*SPINNMAN)
    results = _run(proxy_data_path, "--size-mb", "0.02", "--latency-ms", "-1", "--rounds", "1")
    assert set(results["0ms"]["mb_s"]) == {"a", "b", "c", "d"}
    assert results["0ms"]["ratios"]["a/b"] > 0


def test_scp_round_trips_ours_only() -> None:
    figures = _run(scp_round_trips, "--calls", "5", "--rounds", "2", "--skip-spinnman")
    assert set(figures) == {"a", "c"}
    assert all(f["rps"] > 0 and f["p99_ms"] >= f["p50_ms"] for f in figures.values())


@pytest.mark.interop
def test_scp_round_trips_with_spinnman() -> None:
    _peers_or_skip(*SPINNMAN)
    figures = _run(scp_round_trips, "--calls", "5", "--rounds", "1")
    assert set(figures) == {"a", "b", "c"}


def test_allocation_churn_ours_only(capsys: pytest.CaptureFixture[str]) -> None:
    results = _run(
        allocation_churn,
        "--jobs",
        "5",
        "--rounds",
        "1",
        "--single-rounds",
        "2",
        "--skip-old",
        "--skip-v1",
        "--no-postgres",
    )
    assert results["single"]["jobs_s"]["ours (SQLite)"] > 0
    assert results["mix"]["jobs_s"]["ours (SQLite)"] > 0
    durable, created = results["durable ours (SQLite)"]
    assert durable == created == 2 * 5 + len(allocation_churn.mixed_jobs())
    assert "NOT ALL DURABLE" not in capsys.readouterr().out


def test_proxy_cpu_per_packet(capsys: pytest.CaptureFixture[str]) -> None:
    results = _run(proxy_cpu, "--seconds", "1")
    assert set(results) == {"a", "c"}
    assert set(results["a"]["us_per_packet"]) == {"client", "service", "virtual machine"}
    assert set(results["c"]["us_per_packet"]) == {"client", "virtual machine"}
    assert results["a"]["mb_s"] > 0 and results["c"]["mb_s"] > 0
    assert results["a"]["us_per_packet"]["service"] > 0
    assert "CPU µs per packet" in capsys.readouterr().out


@pytest.mark.interop
def test_allocation_churn_v1_contender(capsys: pytest.CaptureFixture[str]) -> None:
    _peers_or_skip(*allocation_churn.OLD_CLIENT)
    results = _run(allocation_churn, "--jobs", "5", "--rounds", "1", "--skip-old", "--no-postgres")
    for sequence in ("single", "mix"):
        assert set(results[sequence]["jobs_s"]) == {"ours (SQLite)", "ours v1 (SQLite)"}
        assert results[sequence]["jobs_s"]["ours v1 (SQLite)"] > 0
    durable, created = results["durable ours (SQLite)"]
    assert durable == created == 2 * (5 + len(allocation_churn.mixed_jobs()))
    assert "NOT ALL DURABLE" not in capsys.readouterr().out


@pytest.mark.interop
def test_allocation_churn_against_old_server() -> None:
    _peers_or_skip(*allocation_churn.OLD_SERVER)
    _peers_or_skip(*allocation_churn.OLD_CLIENT)
    results = _run(allocation_churn, "--jobs", "5", "--rounds", "1", "--no-mix", "--no-postgres")
    assert set(results["single"]["jobs_s"]) == {
        "ours (SQLite)",
        "ours v1 (SQLite)",
        "old spalloc_server 1!7.0.0",
    }


def test_service_load_tiny() -> None:
    results = _run(
        service_load,
        "--jobs",
        "6",
        "--websockets",
        "2",
        "--proxy-jobs",
        "1",
        "--duration",
        "3",
        "--state-rate",
        "5",
        "--keepalive-threads",
        "2",
    )
    assert results["alive"] == 7
    assert results["keepalive_ops"] > 0 and results["proxy_ops"] > 0


def test_every_benchmark_has_a_command_line() -> None:
    for name in (
        "proxy_data_path",
        "proxy_cpu",
        "scp_round_trips",
        "allocation_churn",
        "service_load",
    ):
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "usage: python -m bench." in done.stdout
