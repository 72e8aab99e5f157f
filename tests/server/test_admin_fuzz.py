"""Schemathesis against the admin REST API as an ADMIN: no generated request gets a
server error, and every status answered is in the OpenAPI document (this found ids too
large for the database answering 500)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.http_client import login


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the checks are about the HTTP layer."""
    return f"sqlite:///{tmp_path / 'spalloc.sqlite3'}"


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("schemathesis") is None, reason="schemathesis not installed"
)
def test_admin_api_answers_only_documented_statuses(service: Any) -> None:
    root = login(service, "root")
    ((header, token),) = root.csrf.items()
    st = shutil.which("st") or shutil.which("schemathesis")
    assert st
    done = subprocess.run(
        [st, "run", service.url + "srv/openapi.json",
         "--url", service.url.removesuffix("/spalloc/"),
         "-H", f"Cookie: JSESSIONID={root.session_id}", "-H", f"{header}: {token}",
         "--checks", "not_a_server_error,status_code_conformance", "--seed", "1",
         "--no-shrink", "--request-timeout", "40", "--include-path-regex", "srv/spalloc/admin",
         "-n", "10", "--max-time", "60",
         "--report", "junit", "--report-dir", str(Path(service.config.data_dir) / "st")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert "generated" in output, output[-3000:]
    assert done.returncode == 0, output[-5000:]
