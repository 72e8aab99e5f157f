"""``/spalloc/metrics`` of a live service: the Prometheus exposition parsed, its gauges
following jobs, boards and proxy websockets, request latency by route template,
allocator passes, BMP failures, and who may read it."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
import requests
import websocket
from prometheus_client.parser import text_string_to_metric_families

from pyspalloc.geometry import MachineDefinition, Triad
from pyspalloc.virtual import VirtualMachine
from tests.server.service_support import login, state, wait_for
from tests.server.test_hardware_faults import hw_service, machine, number, the_bmp
from tests.support.http_client import Http

__all__ = ["machine"]  # the fixture, imported for the BMP test

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(service: Any, client: Http | None = None) -> Samples:
    """Read and parse the metrics: sample name and sorted labels -> value."""
    url = service.url + "metrics"
    response = client.get(url) if client else requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def jobs(samples: Samples, state: str) -> float:
    return samples[("spalloc_jobs", (("state", state),))]


def boards(samples: Samples, status: str, machine: str = "spin24") -> float:
    return samples[("spalloc_boards", (("machine", machine), ("state", status)))]


def requests_of(samples: Samples, route: str, method: str = "GET", status: str = "200") -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return samples.get(("spalloc_http_request_duration_seconds_count", labels), 0.0)


JOB_ROUTE = "/spalloc/srv/spalloc/jobs/{job}"


def test_job_and_board_gauges_and_latency_follow_the_service(service: Any) -> None:
    before = scrape(service)
    assert [jobs(before, s) for s in ("QUEUED", "POWER", "READY", "DESTROYED")] == [0, 0, 0, 0]
    assert (boards(before, "in_use"), boards(before, "free")) == (0, 24)
    assert boards(before, "out_of_service") == 0
    alice = login(service, "alice")
    urls = [alice.create(**{"num-boards": n}).headers["location"] for n in (1, 3)]
    for url in urls:
        wait_for(lambda url=url: state(alice, url) == "READY")
    reads = 3
    for _ in range(reads):
        assert alice.get(urls[0]).status_code == 200
    ready = scrape(service)
    assert jobs(ready, "READY") == 2 and jobs(ready, "QUEUED") == 0
    assert (boards(ready, "in_use"), boards(ready, "free")) == (4, 20)
    # the job reads are counted under the route's template, never under the raw path
    assert requests_of(ready, JOB_ROUTE) >= reads + 2
    assert not any(urls[0].rsplit("/", 1)[1] in dict(k[1]).get("route", "") for k in ready)
    assert requests_of(ready, "/spalloc/srv/spalloc/jobs", "POST", "201") == 2
    assert requests_of(ready, "unmatched", "GET", "404") == 0
    assert requests.get(service.url + "srv/spalloc/no/such/thing", timeout=30).status_code == 404
    assert ready[("spalloc_allocator_pass_seconds_count", ())] >= 1

    assert alice.delete(urls[1] + "?reason=done").status_code == 204
    wait_for(lambda: boards(scrape(service), "in_use") == 1)
    after = scrape(service)
    assert (jobs(after, "READY"), jobs(after, "DESTROYED")) == (1, 1)
    assert boards(after, "free") == 23
    assert requests_of(after, "unmatched", "GET", "404") == 1
    assert requests_of(after, JOB_ROUTE, "DELETE", "204") == 1


def test_board_out_of_service_is_counted(service: Any) -> None:
    store = service.app.state.ctx.store
    spin24 = store.machine("spin24")
    board = min(store.boards(spin24.id), key=lambda b: b.id)
    store.take_out_of_service([board.id], None, "test")
    samples = scrape(service)
    assert (boards(samples, "out_of_service"), boards(samples, "free")) == (1, 23)


def test_proxy_websocket_and_channel_show_up(service: Any) -> None:
    alice = login(service, "alice")
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    proxy = alice.get(url).json()["proxy-ref"]
    cookie = "JSESSIONID=" + alice.http.cookies["JSESSIONID"]
    headers = [f"Cookie: {cookie}", *[f"{k}: {v}" for k, v in alice.csrf.items()]]
    assert scrape(service)[("spalloc_proxy_websockets", ())] == 0
    ws = websocket.create_connection(proxy, timeout=5, header=headers, origin="127.0.0.1")
    try:
        open_samples = scrape(service)
        assert open_samples[("spalloc_proxy_websockets", ())] == 1
        assert open_samples[("spalloc_proxy_channels", ())] == 0
        ws.send_binary(struct.pack("<5I", 0, 7, 0, 0, 17893))  # open a channel
        assert struct.unpack("<2I", ws.recv()[:8]) == (0, 7)
        assert scrape(service)[("spalloc_proxy_channels", ())] == 1
    finally:
        ws.close()
    wait_for(lambda: scrape(service)[("spalloc_proxy_websockets", ())] == 0)
    assert scrape(service)[("spalloc_proxy_channels", ())] == 0


def test_only_admins_read_metrics_from_outside_the_allowed_networks(
    make_service: Callable[..., Any],
) -> None:
    service = make_service(metrics_allow=("10.0.0.0/8",))  # loopback not among them
    url = service.url + "metrics"
    anonymous = requests.get(url, timeout=30)
    assert anonymous.status_code == 401
    assert "spalloc_jobs" not in anonymous.text
    alice = login(service, "alice")
    refused = alice.get(url)
    assert refused.status_code == 403 and "spalloc_jobs" not in refused.text
    root = login(service, "root")
    assert jobs(scrape(service, root), "READY") == 0


def test_a_trusted_proxy_forwarding_an_allowed_client_is_served(
    make_service: Callable[..., Any],
) -> None:
    service = make_service(metrics_allow=("10.0.0.0/8",), trusted_proxies=("127.0.0.1",))
    url = service.url + "metrics"
    inside = requests.get(url, headers={"X-Forwarded-For": "10.1.2.3"}, timeout=30)
    assert inside.status_code == 200 and "spalloc_jobs" in inside.text
    outside = requests.get(url, headers={"X-Forwarded-For": "192.0.2.7"}, timeout=30)
    assert outside.status_code == 401


@pytest.mark.slow
def test_bmp_failures_are_counted(
    make_service: Callable[..., Any],
    machine: tuple[MachineDefinition, VirtualMachine],
) -> None:
    definition, vm = machine
    service = hw_service(make_service, definition)
    store = service.app.state.ctx.store
    first = min(store.boards(store.machine("spin24").id), key=lambda b: b.id)
    the_bmp(vm).fail_power(number(definition, Triad(*first.triad)))
    key = ("spalloc_bmp_failures_total", (("machine", "spin24"), ("operation", "on")))
    assert scrape(service).get(key, 0.0) == 0
    alice = login(service, "alice")
    url = alice.create(**{"num-boards": 1}).headers["location"]
    wait_for(lambda: scrape(service).get(key, 0.0) >= 1, timeout=30)
    wait_for(lambda: state(alice, url) == "READY", timeout=60)  # requeued onto a good board
    samples = scrape(service)
    assert boards(samples, "out_of_service") == 1
    assert samples[key] >= 1
