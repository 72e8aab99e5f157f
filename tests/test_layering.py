"""The layers of ``pyspalloc`` and what each may import (docs/architecture.md, "Imports").

Read from the source with :mod:`ast` (:mod:`tests.support.import_graph`), type-only
imports included: a layer that names another's types knows it. An import of a package
runs the package's ``__init__`` first; those edges (``pyspalloc.wire.scp`` to
``pyspalloc``) are not dependencies and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

from pyspalloc.cli.main import COMMANDS, main
from tests.support.import_graph import (
    ROOT,
    find_cycle,
    package_graph,
    subgraph,
    without_package_inits,
)

#: the layers at the bottom: each may import only itself and those named here
ONLY: dict[str, set[str]] = {
    "wire": set(),
    "geometry": set(),
    "exceptions": set(),
    "virtual": {"wire", "geometry"},
    "transceiver": {"wire", "geometry", "exceptions"},
}
#: arrows that must not exist, whatever else a layer imports
FORBIDDEN = {
    ("server", "virtual"),  # the service knows boards only by their addresses
    ("server", "client"),
    ("client", "server"),
    ("cli", "transceiver"),  # commands use the client; hardware tools live outside cli/
}
#: modules of ``cli`` allowed to import ``transceiver`` (operator tools that need the
#: hardware directly); none today
CLI_HARDWARE_TOOLS: set[str] = set()


def layer(module: str) -> str:
    """``server`` for ``pyspalloc.server.app``; ``""`` for ``pyspalloc`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def arrows() -> set[tuple[str, str]]:
    """Every import between two modules of different layers, as (importer, imported)."""
    graph = without_package_inits(package_graph(typing=True))
    return {
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if layer(module) != layer(target) and layer(target)
    }


def violations(edges: set[tuple[str, str]]) -> list[str]:
    """The arrows of ``edges`` that the rules above forbid."""
    found = []
    for module, target in sorted(edges):
        source, goal = layer(module), layer(target)
        if source in ONLY and goal not in ONLY[source]:
            found.append(f"{module} -> {target} ({source} may import only {sorted(ONLY[source])})")
        elif (source, goal) in FORBIDDEN and module not in CLI_HARDWARE_TOOLS:
            found.append(f"{module} -> {target} (no {source} -> {goal})")
        elif goal == "cli" and source not in ("cli", "__main__"):
            found.append(f"{module} -> {target} (only the command line imports cli)")
    return found


def test_the_graph_sees_the_layers() -> None:
    edges = arrows()
    assert ("pyspalloc.virtual.board", "pyspalloc.wire.scp") in edges
    assert ("pyspalloc.__main__", "pyspalloc.cli.main") in edges
    assert any(layer(a) == "cli" and layer(b) == "client" for a, b in edges)
    assert any(layer(a) == "server" and layer(b) == "geometry" for a, b in edges)


def test_the_rules_see_a_violation() -> None:
    bad = {
        ("pyspalloc.server.runner", "pyspalloc.virtual.machine"),
        ("pyspalloc.cli.demo", "pyspalloc.transceiver.transceiver"),
        ("pyspalloc.client.job", "pyspalloc.server.app"),
        ("pyspalloc.virtual.board", "pyspalloc.transceiver.engine"),
        ("pyspalloc.wire.scp", "pyspalloc.geometry.coords"),
        ("pyspalloc.server.app", "pyspalloc.cli.serve"),
        ("pyspalloc.cli.serve", "pyspalloc.server.app"),  # allowed
    }
    assert len(violations(bad)) == 6


def test_layers_import_only_what_they_may() -> None:
    assert violations(arrows()) == []


def test_no_import_cycle_inside_the_client() -> None:
    graph = without_package_inits(subgraph(package_graph(), "pyspalloc.client"))
    assert len(graph) > 10
    assert find_cycle(graph) is None


def _fallbacks(path: Path) -> list[str]:
    """``import importlib`` and handlers of ImportError or ModuleNotFoundError in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            names = [n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)]
            if {"ImportError", "ModuleNotFoundError"} & set(names):
                found.append(f"{where} falls back on a failed import")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [module] if module else [alias.name for alias in node.names]
            if any(name == "importlib" or name == "importlib.util" for name in names):
                found.append(f"{where} imports importlib")
    return found


#: importlib where a plain import cannot do: finding spinnman's boot image without
#: importing spinnman
IMPORTLIB_ALLOWED = {"transceiver/boot_image.py"}


def test_no_import_fallbacks_or_importlib_registries() -> None:
    found = [
        problem
        for path in sorted(ROOT.rglob("*.py"))
        for problem in _fallbacks(path)
        if not (
            problem.endswith("imports importlib")
            and str(path.relative_to(ROOT)) in IMPORTLIB_ALLOWED
        )
    ]
    assert found == []


def test_the_fallback_check_sees_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import importlib\ntry:\n    import rich\nexcept ImportError:\n    rich = None\n"
    )
    assert len(_fallbacks(bad.resolve())) == 2


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_sub_command_loads(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command)
    assert command.name == {"ps": "jobs", "where-is": "where-is"}.get(name, name)
