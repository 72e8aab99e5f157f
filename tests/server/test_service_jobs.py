"""Job and machine REST behaviour of a running service (instant power control)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.server.service_support import login, state, wait_for
from tests.support.http_client import Http


@pytest.fixture
def alice(service: Any) -> Http:
    return login(service, "alice")


def test_service_description(alice: Http, service: Any) -> None:
    body = alice.describe()
    assert body["version"] == {"major-version": 7, "minor-version": 4, "revision": 2}
    assert body["jobs-ref"] == service.url + "srv/spalloc/jobs"
    assert body["machines-ref"] == service.url + "srv/spalloc/machines"
    assert body["csrf-header"] == "X-CSRF-TOKEN" and body["csrf-token"]


def test_machines_and_where_is(alice: Http) -> None:
    machines = alice.get("machines").json()["machines"]
    assert [m["name"] for m in machines] == ["spin24"]
    m = machines[0]
    assert (m["width"], m["height"], m["tags"]) == (4, 2, ["default"])
    assert m["dead-boards"] == [] and m["dead-links"] == []
    one = alice.get("machines/spin24/").json()
    assert one["lookup-by-chip"].endswith("/machines/spin24/chip")
    chip = alice.get("machines/spin24/chip?x=9&y=5").json()
    assert chip["logical-board-coordinates"] == [0, 0, 1]
    assert chip["board-chip"] == [8, 4]
    assert "job-id" not in chip
    logical = alice.get("machines/spin24/logical-board?x=1&y=0&z=2").json()
    assert logical["board-chip"] == [16, 8]
    physical = alice.get("machines/spin24/physical-board?cabinet=0&frame=0&board=1").json()
    assert physical["logical-board-coordinates"] == [0, 0, 1]
    by_ip = alice.get("machines/spin24/board-ip?address=127.1.0.9").json()
    assert by_ip["physical-board-coordinates"] == [0, 0, 1]
    missing = alice.get("machines/spin24/logical-board?x=9&y=9&z=0")
    assert (missing.status_code, missing.text) == (404, "failed to locate board")
    assert alice.get("machines/nope").status_code == 404
    assert alice.get("machines/nope").text == "no such machine"


def test_create_get_keepalive_destroy(alice: Http, service: Any) -> None:
    created = alice.create(**{"num-boards": 3, "keepalive-interval": "PT2M"})
    assert created.status_code == 201
    url = created.headers["location"]
    assert url.startswith("http://127.0.0.1:") and url == created.json()["job-ref"]
    wait_for(lambda: state(alice, url) == "READY")
    body = alice.get(url + "/").json()
    assert body["owner"] == "alice"
    assert body["proxy-ref"].startswith("ws://") and body["proxy-ref"].endswith(
        f"/spalloc/proxy/{created.json()['job-id']}"
    )
    assert body["original-request"]["keepalive-interval"] == 120.0
    assert body["original-request"]["tags"] == ["default"]
    machine = alice.get(url + "/machine").json()
    assert (machine["width"], machine["height"], machine["depth"]) == (1, 1, 3)
    assert machine["connections"][0][0] == [0, 0]
    assert len(machine["boards"]) == 3
    assert alice.get(url + "/machine/power").json() == {"power": "ON"}
    chip = alice.get(url + "/chip?x=8&y=4").json()
    assert chip["board-chip"] == [8, 4] and chip["job-chip"] == [8, 4]
    assert alice.get(url + "/chip?x=40&y=20").status_code == 204
    kept = alice.put(url + "/keepalive", data="alive",
                     headers={"Content-Type": "text/plain; charset=UTF-8"})  # fmt: skip
    assert (kept.status_code, kept.text) == (200, "ok")
    listed = alice.get("jobs").json()["jobs"]
    assert url in listed
    deleted = alice.delete(url + "/?reason=finished")
    assert deleted.status_code == 204
    gone = alice.get(url).json()
    assert gone["state"] == "DESTROYED" and gone["reason"] == "finished"
    assert "finish-time" in gone and "proxy-ref" not in gone
    wait_for(lambda: not service.controller.powered)
    assert url not in alice.get("jobs").json()["jobs"]
    assert url in alice.get("jobs?deleted=TRUE").json()["jobs"]
    after = alice.get(url + "/machine").json()
    assert after["connections"] == [] and after["boards"] == []
    assert alice.delete(url + "?reason=again").status_code == 204


def test_paths_tolerate_slashes(alice: Http) -> None:
    url = alice.create().headers["location"]
    job_id = url.rsplit("/", 1)[1]
    for variant in (url, url + "/", alice.srv + "jobs//" + job_id + "/"):
        assert alice.get(variant).status_code == 200
    assert alice.get(alice.srv.rstrip("/")).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"num-boards": 1, "tags": ["default"]}, "keepalive-interval is required"),
        ({"keepalive-interval": "PT10S", "tags": ["default"]},
         "keepalive-interval must be 30 to 300 seconds"),
        ({"keepalive-interval": "PT6M", "tags": ["default"]},
         "keepalive-interval must be 30 to 300 seconds"),
        ({"keepalive-interval": "soon", "tags": ["default"]},
         "keepalive-interval must be an ISO-8601 duration such as PT60S"),
        ({"keepalive-interval": "PT60S"}, "either machine-name or tags must be supplied"),
        ({"keepalive-interval": "PT60S", "tags": ["default"], "machine-name": "spin24"},
         "either machine-name or tags must be supplied"),
        ({"keepalive-interval": "PT60S", "machine-name": " "},
         "machine-name, if given, must be non-blank"),
        ({"keepalive-interval": "PT60S", "tags": ["default"], "num-boards": 2,
          "dimensions": {"width": 1, "height": 1}},
         "either specify num-boards or dimensions and/or board"),
        ({"keepalive-interval": "PT60S", "tags": ["default"], "board": {"x": 1}},
         "at least one way of identifying a board must be given"),
        ({"keepalive-interval": "PT60S", "tags": ["default"], "owner": "bob"},
         "Only admin and NMPI users can specify an owner"),
        ({"keepalive-interval": "PT60S", "tags": ["default"], "frobnicate": 1},
         "unrecognized field frobnicate"),
        ({"keepalive-interval": "PT60S", "tags": ["default"], "max-dead-boards": -1},
         "max-dead-boards must be at least 0"),
        ({"keepalive-interval": "PT60S", "tags": ["default"], "num-boards": 0},
         "num-boards must be at least 1"),
        ({"keepalive-interval": "PT60S", "tags": ["nosuchtag"]},
         "no machine available which matches allocation request"),
        ({"keepalive-interval": "PT60S", "machine-name": "nope"},
         "no machine available which matches allocation request"),
        ({"keepalive-interval": "PT60S", "tags": ["default"], "num-boards": 25},
         "request cannot fit on machine"),
        ({"keepalive-interval": "PT60S", "tags": ["default"],
          "dimensions": {"width": 5, "height": 1}}, "request cannot fit on machine"),
        ({"keepalive-interval": "PT60S", "tags": ["default"],
          "board": {"x": 0, "y": 0, "z": 1}, "dimensions": {"width": 1, "height": 1}},
         "no machine available which matches allocation request"),
    ],
)  # fmt: skip
def test_validation_messages(alice: Http, body: dict[str, Any], message: str) -> None:
    response = alice.post("jobs", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == message
    assert alice.get("jobs").status_code == 200  # still serving


def test_bad_json_and_bad_query(alice: Http) -> None:
    response = alice.post("jobs", data=b"{nope", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.text) == (400, "request body is not valid JSON")
    assert alice.get("jobs?limit=300").text == "limit must not be bigger than 200"
    assert alice.get("jobs?limit=abc").text == "limit must be an integer"
    assert alice.get("jobs/0").text == "job ID must be positive"
    assert alice.get("jobs/999").status_code == 404
    assert alice.get("jobs/999").text == "no such job"


def test_specific_board_and_numeric_keepalive(alice: Http) -> None:
    body = {"board": {"cabinet": 0, "frame": 0, "board": 4}, "keepalive-interval": 45}
    url = alice.create(**body).headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    machine = alice.get(url + "/machine").json()
    assert machine["depth"] == 1 and len(machine["boards"]) == 1
    assert alice.get(url + "/chip").json()["physical-board-coordinates"] == [0, 0, 4]


def test_paging_links(alice: Http) -> None:
    urls = [alice.create().headers["location"] for _ in range(5)]
    first = alice.get("jobs?limit=2")
    body = first.json()
    assert body["jobs"] == urls[::-1][:2]
    assert "prev" not in body
    assert "start=2" in body["next"] and "wait=false" in body["next"]
    assert 'rel="next"' in first.headers["link"]
    second = alice.get(body["next"]).json()
    assert second["jobs"] == urls[::-1][2:4]
    assert "start=0" in second["prev"]


def test_long_poll_returns_on_change(alice: Http, service: Any) -> None:
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    result: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        result["body"] = alice.get(url + "?wait=True").json()
        result["took"] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    assert alice.delete(url + "?reason=bye").status_code == 204
    thread.join(10)
    assert result["body"]["state"] == "DESTROYED"
    assert 0.4 < result["took"] < 5


def test_long_poll_times_out(make_service: Any) -> None:
    service = make_service(wait_timeout=0.5)
    alice = login(service, "alice")
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    started = time.monotonic()
    assert alice.get(url + "?wait=true").json()["state"] == "READY"
    assert 0.4 < time.monotonic() - started < 5


def test_long_poll_is_not_woken_by_a_change_already_shown(make_service: Any) -> None:
    """A read can show a state committed before its change is announced; that late
    announcement must not wake the next ``wait=true`` (it once did, at once)."""
    service = make_service(wait_timeout=0.6)
    alice = login(service, "alice")
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    job_id = int(url.rstrip("/").rsplit("/", 1)[1])
    service.app.state.ctx.events.notify(("job", job_id))  # late news of READY
    started = time.monotonic()
    assert alice.get(url + "?wait=true").json()["state"] == "READY"
    assert time.monotonic() - started > 0.5


def test_long_poll_returns_at_once_on_a_change_not_yet_shown(service: Any, alice: Http) -> None:
    """A change between a read and the next ``wait=true`` is not missed."""
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    job_id = int(url.rstrip("/").rsplit("/", 1)[1])
    ctx = service.app.state.ctx
    assert ctx.store.destroy_job(job_id, "behind the poller's back")  # no announcement
    started = time.monotonic()
    assert alice.get(url + "?wait=true").json()["state"] == "DESTROYED"
    assert time.monotonic() - started < 2


def test_other_users_jobs_are_invisible_but_admin_sees_them(service: Any, alice: Http) -> None:
    url = alice.create().headers["location"]
    bob = login(service, "bob")
    for response in (
        bob.get(url),
        bob.put(url + "/keepalive", data="alive"),
        bob.delete(url + "?reason=mine"),
        bob.get(url + "/machine"),
    ):
        assert (response.status_code, response.text) == (404, "no such job")
    assert url not in bob.get("jobs").json()["jobs"]
    assert state(alice, url) != "DESTROYED"
    root = login(service, "root")
    assert root.get(url).json()["owner"] == "alice"
    assert url in root.get("jobs").json()["jobs"]
    assert root.delete(url + "?reason=admin").status_code == 204
    assert alice.get(url).json()["reason"] == "admin"


def test_admin_can_create_for_another_user(service: Any) -> None:
    root = login(service, "root")
    url = root.create(owner="alice").headers["location"]
    assert login(service, "alice").get(url).json()["owner"] == "alice"


def test_power_off_and_on(alice: Http, service: Any) -> None:
    url = alice.create(**{"num-boards": 1}).headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    assert alice.post(url + "/machine/power", json={"power": "OFF"}).status_code == 202
    wait_for(lambda: alice.get(url + "/machine/power").json() == {"power": "OFF"})
    assert state(alice, url) == "READY"
    assert not service.controller.powered
    assert alice.post(url + "/machine/power", json={"power": "ON"}).status_code == 202
    wait_for(lambda: alice.get(url + "/machine/power").json() == {"power": "ON"})
    bad = alice.post(url + "/machine/power", json={"power": "MAYBE"})
    assert (bad.status_code, bad.text) == (400, "power must be specified")


def test_keepalive_expiry_destroys_and_frees(make_service: Any) -> None:
    service = make_service(keepalive_min=1.0, expiry_period=0.2)
    alice = login(service, "alice")
    url = alice.create(**{"num-boards": 24, "keepalive-interval": "PT1S"}).headers["location"]
    body = wait_for(lambda: (b := alice.get(url).json())["state"] == "DESTROYED" and b)
    assert body["reason"] == "keepalive expired"
    wait_for(lambda: not service.controller.powered)
    # the whole machine is free again
    again = alice.create(**{"num-boards": 24}).headers["location"]
    wait_for(lambda: state(alice, again) == "READY")


def test_queued_job_does_not_block_smaller_one(alice: Http, service: Any) -> None:
    first = alice.create(**{"dimensions": {"width": 2, "height": 2}}).headers["location"]
    wait_for(lambda: state(alice, first) == "READY")
    big = alice.create(**{"dimensions": {"width": 4, "height": 2}}).headers["location"]
    small = alice.create(**{"num-boards": 1}).headers["location"]
    wait_for(lambda: state(alice, small) == "READY")
    assert state(alice, big) == "QUEUED"
    assert alice.get(big + "/machine").status_code == 204
    assert "proxy-ref" not in alice.get(big).json()
    alice.delete(first)
    alice.delete(small)
    wait_for(lambda: state(alice, big) == "READY")
    assert len(alice.get(big + "/machine").json()["boards"]) == 24


def test_report_issue_takes_board_out_after_two_reports(alice: Http, service: Any) -> None:
    url = alice.create(**{"num-boards": 1}).headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    board = alice.get(url + "/machine").json()["boards"][0]
    report = {"issue": "smoke", "boards": [{"chip": [0, 0]}]}
    assert alice.post(url + "/report-issue", json=report).json() == {"action": "report noted"}
    again = alice.post(url + "/report-issue", json=report).json()
    assert again == {"action": "report noted"}  # one user's reports count once
    alice.delete(url)
    bob = login(service, "bob")
    where = dict(zip("xyz", board, strict=True))
    url = bob.create(board=where).headers["location"]
    wait_for(lambda: state(bob, url) == "READY")
    second = bob.post(url + "/report-issue", json=report).json()
    assert second == {"action": "1 boards taken out of service"}
    dead = alice.get("machines").json()["machines"][0]["dead-boards"]
    assert len(dead) == 1


def test_memory_without_operations_is_500(alice: Http) -> None:
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    response = alice.get(url + "/memory?x=0&y=0&address=0&size=4")
    assert response.status_code in (200, 500)
    if response.status_code == 500:
        assert response.text.startswith("unexpected server problem: ")


def test_openapi_document(service: Any) -> None:
    import requests

    document = requests.get(service.url + "srv/openapi.json", timeout=10).json()
    assert "/spalloc/srv/spalloc/jobs" in document["paths"]


def test_long_poll_sees_change_made_just_before_the_wait(alice: Http, service: Any) -> None:
    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    alice.get(url)  # this session has now seen READY
    assert alice.delete(url + "?reason=quick").status_code == 204
    started = time.monotonic()
    assert alice.get(url + "?wait=true").json()["state"] == "DESTROYED"
    assert time.monotonic() - started < 5


def test_proxy_websocket_seam(alice: Http, service: Any) -> None:
    import struct

    import websocket

    url = alice.create().headers["location"]
    wait_for(lambda: state(alice, url) == "READY")
    proxy = alice.get(url).json()["proxy-ref"]
    cookie = "JSESSIONID=" + alice.http.cookies["JSESSIONID"]
    with pytest.raises(websocket.WebSocketException):
        websocket.create_connection(proxy, timeout=5)
    headers = [f"Cookie: {cookie}", *[f"{k}: {v}" for k, v in alice.csrf.items()]]
    ws = websocket.create_connection(proxy, timeout=5, header=headers, origin="127.0.0.1")
    try:
        ws.send_binary(struct.pack("<5I", 0, 7, 0, 0, 17893))
        opcode, correlation, channel = struct.unpack("<3I", ws.recv()[:12])
        assert (opcode, correlation) == (0, 7) and channel != 0
        alice.delete(url + "?reason=bye")
        # the service closes the websocket when the job ends
        started = time.monotonic()
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            for _ in range(50):
                ws.recv()
        assert time.monotonic() - started < 4
    finally:
        ws.close()
