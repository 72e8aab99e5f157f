"""``/spalloc/metrics``: the service's metrics in the Prometheus text format.

Each service has its own :class:`~prometheus_client.CollectorRegistry` (several services
in one process do not mix). Gauges of jobs, boards and proxy websockets are read from the
store and the proxy registry when scraped; request latency (by route template, never the
raw path, so label values stay few), allocator pass time and BMP failures are recorded as
they happen.

Access: metrics are operational data. A client from one of ``metrics_allow`` (default:
loopback only, for a Prometheus beside the service) reads them without logging in;
anyone else must be an ADMIN (401 without credentials, 403 for other users).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pyspalloc.server.api.common import AUTH, caller_of, responses
from pyspalloc.server.config import ServiceConfig
from pyspalloc.server.lifecycle import Lifecycle
from pyspalloc.server.login_guard import client_address
from pyspalloc.server.networks import address_in, parse_networks
from pyspalloc.server.proxy import ProxyRegistry
from pyspalloc.server.store import Store, TrustLevel
from pyspalloc.server.store.counts import boards_by_machine, jobs_by_state

METRICS_PATH = "/spalloc/metrics"
#: request methods counted by name; any other is ``other`` (a client picks the method)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: route label of a request no route matched
UNMATCHED = "unmatched"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class StateCollector(Collector):
    """Gauges read when scraped: jobs by state, boards per machine, proxy use."""

    def __init__(self, store: Store, proxies: ProxyRegistry) -> None:
        self.store = store
        self.proxies = proxies

    def describe(self) -> Iterable[Metric]:
        """Nothing: describing would read the database when the collector registers."""
        return []

    def collect(self) -> Iterable[Metric]:
        """Read the counts now."""
        jobs = GaugeMetricFamily("spalloc_jobs", "Jobs in each state.", labels=["state"])
        for state, n in jobs_by_state(self.store).items():
            if state.name != "UNKNOWN":
                jobs.add_metric([state.name], n)
        boards = GaugeMetricFamily(
            "spalloc_boards",
            "Boards of each in-service machine: in_use (held by a job), free, out_of_service.",
            labels=["machine", "state"],
        )
        for machine, counts in boards_by_machine(self.store).items():
            boards.add_metric([machine, "in_use"], counts.in_use)
            boards.add_metric([machine, "free"], counts.free)
            boards.add_metric([machine, "out_of_service"], counts.out_of_service)
        yield jobs
        yield boards
        yield GaugeMetricFamily(
            "spalloc_proxy_websockets", "Open proxy websockets.", value=self.proxies.count()
        )
        channels = self.proxies.channels
        yield GaugeMetricFamily("spalloc_proxy_channels", "Open proxy channels.", value=channels)


class ServiceMetrics:
    """The metrics of one service and the registry they are exposed from."""

    def __init__(self, store: Store, proxies: ProxyRegistry) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StateCollector(store, proxies))
        self.request_seconds = Histogram(
            "spalloc_http_request_duration_seconds",
            "HTTP request time, by method, route template and status.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.allocator_seconds = Histogram(
            "spalloc_allocator_pass_seconds",
            "Time of each allocator pass.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.bmp_failures = Counter(
            "spalloc_bmp_failures",
            "Failed power changes (a BMP refused, failed or did not answer), by machine "
            "and operation (on/off).",
            ["machine", "operation"],
            registry=self.registry,
        )

    def power_failed(self, machine: str, operation: str) -> None:
        """Count one failed power change."""
        self.bmp_failures.labels(machine, operation).inc()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times each HTTP request into a histogram labelled by its route's template."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tell(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tell)
        finally:
            method = scope.get("method", "")
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.histogram.labels(
                method if method in METHODS else "other", route, str(status)
            ).observe(time.perf_counter() - started)


def install_metrics(
    app: FastAPI, config: ServiceConfig, store: Store, proxies: ProxyRegistry, lifecycle: Lifecycle
) -> ServiceMetrics:
    """Add ``/spalloc/metrics`` and the latency middleware (call after every other
    middleware: it must be outermost to time them too), and feed the lifecycle's
    allocator passes and power failures in."""
    metrics = ServiceMetrics(store, proxies)
    lifecycle.pass_listeners.append(metrics.allocator_seconds.observe)
    lifecycle.power.failure_listeners.append(metrics.power_failed)
    # a bad network is refused (ValueError) at start, not at a scrape
    allowed = parse_networks(config.metrics_allow)

    @app.get(METRICS_PATH, responses=responses(*AUTH), tags=["operations"])
    def read_metrics(request: Request) -> Response:
        """The service's metrics (Prometheus text format): ADMIN, or anyone from a
        network of ``metrics_allow``."""
        if not address_in(client_address(request, config.trusted_proxies), allowed):
            caller_of(request, TrustLevel.ADMIN)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(MetricsMiddleware, histogram=metrics.request_seconds)
    app.state.metrics = metrics
    return metrics
