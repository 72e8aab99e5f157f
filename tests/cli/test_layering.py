"""``cli/`` uses the client for REST: no HTTP library, no session, no URL building."""

from __future__ import annotations

import ast
from pathlib import Path

import pyspalloc.cli

CLI = Path(pyspalloc.cli.__file__).parent
#: modules a command may not import: the HTTP libraries and the client's session
FORBIDDEN_MODULES = ("requests", "urllib", "httpx", "websocket", "pyspalloc.client.session")
#: names of the client a command may not use
FORBIDDEN_NAMES = {"Session", "SessionAware"}
#: attributes that reach below the client's API (its session, its URLs)
FORBIDDEN_ATTRIBUTES = {"session", "srv_url", "_session", "_url"}


def _problems(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            found += [f"{where} imports {a.name}" for a in node.names if a.name in FORBIDDEN_NAMES]
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"{where} uses .{node.attr}")
            continue
        else:
            continue
        found += [
            f"{where} imports {name}"
            for name in names
            if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)
        ]
    return found


def test_cli_talks_to_the_service_only_through_the_client() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) > 10
    problems = [problem for path in modules for problem in _problems(path)]
    assert problems == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import requests\nfrom pyspalloc.client import Session\n"
        "def f(client):\n    return client.session.get(client.session.srv_url + 'jobs/')\n"
    )
    assert len(_problems(bad)) == 5
