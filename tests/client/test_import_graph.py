"""The import graph inside ``pyspalloc.client``: its proxy package's layers (the whole
client has no cycle: tests/test_layering.py).

Imports are read from the source with :mod:`ast` (:mod:`tests.support.import_graph`):
module-level ones and those inside functions (the lazy ones), and, only where asked
for, those under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

from tests.support.import_graph import find_cycle, package_graph, subgraph, without_package_inits


def client_graph(typing: bool = False) -> dict[str, set[str]]:
    """Module -> the client modules it imports (with type-only imports if ``typing``)."""
    return subgraph(package_graph(typing), "pyspalloc.client")


def test_the_graph_sees_the_proxy_package() -> None:
    graph = client_graph()
    assert "pyspalloc.client.proxy.connection" in graph
    assert "pyspalloc.client.proxy.link" in graph["pyspalloc.client.proxy.connection"]
    assert "pyspalloc.client.proxy.calls" in graph["pyspalloc.client.proxy.connection"]
    # lazy imports count: the job opens its proxy on first use
    assert "pyspalloc.client.proxy.connection" in graph["pyspalloc.client.rest_job"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


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
