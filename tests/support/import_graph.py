"""The import graph of ``pyspalloc``, read from the source with :mod:`ast`.

Imports count wherever they stand: module level and inside functions (the lazy ones);
those under ``if TYPE_CHECKING:``, which never run, count only where asked for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pyspalloc

PACKAGE = "pyspalloc"
ROOT = Path(pyspalloc.__file__).resolve().parent


def module_name(path: Path) -> str:
    """``pyspalloc.a.b`` for ``ROOT/a/b.py`` (and for ``ROOT/a/b/__init__.py``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(
    tree: ast.AST, modules: set[str], here: str, is_package: bool, typing: bool
) -> set[str]:
    """The modules of ``modules`` that ``tree`` imports when it runs (or type-checks)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if not typing and isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    result = set()
    for name in found:
        # "import a.b.c" also runs a and a.b
        parts = name.split(".")
        result.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return {name for name in result if name in modules and name != here}


def package_graph(typing: bool = False) -> dict[str, set[str]]:
    """Module -> the ``pyspalloc`` modules it imports (type-only imports too if ``typing``)."""
    paths = {module_name(path): path for path in ROOT.rglob("*.py")}
    modules = set(paths)
    return {
        name: imported(
            ast.parse(path.read_text()), modules, name, path.name == "__init__.py", typing
        )
        for name, path in paths.items()
    }


def subgraph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """The modules of ``package`` (itself included) and their imports inside it."""

    def inside(name: str) -> bool:
        return name == package or name.startswith(package + ".")

    return {
        name: {target for target in targets if inside(target)}
        for name, targets in graph.items()
        if inside(name)
    }


def without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` without the edges from a module to the packages that contain it.

    Importing ``pyspalloc.client.proxy.link`` runs ``pyspalloc.client`` first, which
    is not a dependency of ``link`` on the package.
    """
    return {
        name: {target for target in targets if not name.startswith(target + ".")}
        for name, targets in graph.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None
