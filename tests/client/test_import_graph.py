"""The import graph inside ``pyspalloc.client`` has no cycle.

Imports are read from the source with :mod:`ast`: module-level ones and those inside
functions (the lazy ones), and, only where asked for, those under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pyspalloc.client

PACKAGE = "pyspalloc.client"
ROOT = Path(pyspalloc.client.__file__).resolve().parent


def module_name(path: Path) -> str:
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


def client_graph(typing: bool = False) -> dict[str, set[str]]:
    """Module -> the client modules it imports (with type-only imports if ``typing``)."""
    paths = {module_name(path): path for path in ROOT.rglob("*.py")}
    modules = set(paths)
    return {
        name: imported(
            ast.parse(path.read_text()), modules, name, path.name == "__init__.py", typing
        )
        for name, path in paths.items()
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


def without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` without the edges from a module to the packages that contain it.

    Importing ``pyspalloc.client.proxy.link`` runs ``pyspalloc.client`` first, which
    is not a dependency of ``link`` on the package.
    """
    return {
        name: {target for target in targets if not name.startswith(target + ".")}
        for name, targets in graph.items()
    }


def test_the_graph_sees_the_proxy_package() -> None:
    graph = client_graph()
    assert "pyspalloc.client.proxy.connection" in graph
    assert "pyspalloc.client.proxy.link" in graph["pyspalloc.client.proxy.connection"]
    assert "pyspalloc.client.proxy.calls" in graph["pyspalloc.client.proxy.connection"]
    # lazy imports count: the job opens its proxy on first use
    assert "pyspalloc.client.proxy.connection" in graph["pyspalloc.client.job"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_the_client() -> None:
    assert find_cycle(without_package_inits(client_graph())) is None


PROXY = "pyspalloc.client.proxy."


def proxy_graph() -> dict[str, set[str]]:
    """The proxy package's modules and what they import of it, type-only imports too."""
    return {
        name: {target for target in targets if target.startswith(PROXY)}
        for name, targets in without_package_inits(client_graph(typing=True)).items()
        if name.startswith(PROXY)
    }


def test_no_cycle_inside_the_proxy_package_even_for_the_type_checker() -> None:
    assert find_cycle(proxy_graph()) is None


def test_channels_know_their_host_only_through_a_protocol() -> None:
    graph = proxy_graph()
    proxy = PROXY
    assert graph[proxy + "channels"] == set()
    assert graph[proxy + "link"] == {proxy + "buffered"}
    assert graph[proxy + "calls"] == {proxy + "link"}
