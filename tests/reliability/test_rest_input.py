"""REST bad input: explicit cases (400 naming the field) and schemathesis against the
service's own OpenAPI document with a logged-in session (no 5xx)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.http_client import login
from tests.support.waiting import wait_for

CASES: list[tuple[str, dict[str, Any] | str, str]] = [
    ("bad JSON", "{not json", "JSON"),
    ("bad JSON type", "[1, 2]", ""),
    ("unknown field", {"num-boards": 1, "colour": "red"}, "colour"),
    ("board x", {"board": {"x": 21, "y": 0, "z": 0}}, "x"),
    ("board y", {"board": {"x": 0, "y": -1, "z": 0}}, "y"),
    ("board z", {"board": {"x": 0, "y": 0, "z": 3}}, "z"),
    ("width", {"dimensions": {"width": 22, "height": 1}}, "width"),
    ("height", {"dimensions": {"width": 1, "height": 0}}, "height"),
    ("cabinet", {"board": {"cabinet": 32, "frame": 0, "board": 0}}, "cabinet"),
    ("board number", {"board": {"cabinet": 0, "frame": 0, "board": 24}}, "board"),
    ("keepalive low", {"num-boards": 1, "keepalive-interval": "PT5S"}, "keepalive-interval"),
    ("keepalive high", {"num-boards": 1, "keepalive-interval": "PT301S"}, "keepalive-interval"),
    ("keepalive text", {"num-boards": 1, "keepalive-interval": "soon"}, "keepalive-interval"),
    ("keepalive number", {"num-boards": 1, "keepalive-interval": -60}, "keepalive-interval"),
    ("num-boards", {"num-boards": -3}, "num-boards"),
    ("max-dead-boards", {"num-boards": 1, "max-dead-boards": -1}, "max-dead-boards"),
]


def test_bad_job_requests_get_400_naming_the_field(service: Any) -> None:
    alice = login(service, "alice")
    wrong = []
    for name, body, field in CASES:
        if isinstance(body, str):
            response = alice.post("jobs", data=body, headers={"Content-Type": "application/json"})
        else:
            body.setdefault("keepalive-interval", "PT60S")
            if "machine-name" not in body:
                body["tags"] = ["default"]
            response = alice.post("jobs", json=body)
        text = response.text
        if response.status_code != 400 or field.lower() not in text.lower():
            wrong.append(f"{name}: {response.status_code} {text!r}")
        elif not response.headers["content-type"].startswith("text/plain"):
            wrong.append(f"{name}: content type {response.headers['content-type']}")
    assert wrong == []
    listed = alice.get("jobs").json()
    assert listed.get("jobs", []) == []  # none of them made a job


def test_bad_query_values_get_400_naming_the_parameter(service: Any) -> None:
    alice = login(service, "alice")
    created = alice.create(**{"num-boards": 1})
    url = created.headers["location"]
    wait_for(lambda: alice.state(url) == "READY", 20)
    cases = [
        (url + "/chip", {"x": "abc", "y": 0}, "x"),
        (url + "/chip", {"x": 0, "y": "1.5"}, "y"),
        (url + "/memory", {"x": 0, "y": 0, "address": "nowhere", "size": 4}, "address"),
        (url + "/memory", {"x": 0, "y": 0, "address": 0, "size": -4}, "size"),
        ("machines/spin24/logical-board", {"x": "a", "y": 0, "z": 0}, "x"),
        ("machines/spin24/physical-board", {"cabinet": 0, "frame": 0, "board": "b"}, "board"),
        ("jobs", {"limit": "many"}, "limit"),
    ]
    wrong = []
    for target, params, name in cases:
        response = alice.get(target, params=params)
        if response.status_code != 400 or name not in response.text:
            wrong.append(f"{target} {params}: {response.status_code} {response.text!r}")
    assert wrong == []
    put = alice.put(url + "/keepalive", data="alive")
    assert put.status_code == 200 and put.text == "ok"


def _schemathesis(service: Any, checks: str, *extra: str) -> subprocess.CompletedProcess[str]:
    alice = login(service, "alice")
    alice.create(**{"num-boards": 1})
    ((header, token),) = alice.csrf.items()
    st = shutil.which("st") or shutil.which("schemathesis")
    assert st
    return subprocess.run(
        [st, "run", service.url + "srv/openapi.json",
         "--url", service.url.removesuffix("/spalloc/"),
         "-H", f"Cookie: JSESSIONID={alice.session_id}", "-H", f"{header}: {token}",
         "--checks", checks, "--seed", "1", "--no-shrink", "--request-timeout", "40",
         "--exclude-path-regex", "perform_logout|perform_login|emergencyStop",
         "--report", "junit", "--report-dir", str(Path(service.config.data_dir) / "st"),
         *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


needs_schemathesis = pytest.mark.skipif(
    importlib.util.find_spec("schemathesis") is None, reason="schemathesis not installed"
)


@pytest.mark.slow
@needs_schemathesis
def test_schemathesis_finds_no_server_error(service: Any) -> None:
    done = _schemathesis(service, "not_a_server_error", "-n", "10", "--max-time", "60")
    output = done.stdout + done.stderr
    assert "generated" in output, output[-3000:]
    assert done.returncode == 0, output[-5000:]


@needs_schemathesis
def test_schemathesis_statuses_are_documented(service: Any) -> None:
    done = _schemathesis(
        service, "status_code_conformance", "-n", "3", "--max-time", "20",
        "--include-path-regex", "jobs",
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


def test_openapi_document_lists_the_real_statuses(service: Any) -> None:
    import requests

    paths = requests.get(service.url + "srv/openapi.json", timeout=10).json()["paths"]
    assert [p for p, ops in paths.items() for op in ops.values() if "422" in op["responses"]] == []
    jobs = "/spalloc/srv/spalloc/jobs"
    assert set(paths[jobs]["post"]["responses"]) >= {"201", "400", "401", "403"}
    assert set(paths[jobs + "/{job}"]["get"]["responses"]) >= {"200", "404", "410"}
    assert set(paths[jobs + "/{job}"]["delete"]["responses"]) >= {"204", "404"}
    assert "text/plain" in paths[jobs]["post"]["responses"]["400"]["content"]
