"""Board reports admins see: the web admin page lists and clears them, and each new
report is mailed over SMTP (to a local aiosmtpd sink on loopback) off the request path."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.addresses import free_port
from tests.support.http_client import login
from tests.support.waiting import wait_for

BOARD = {"x": 0, "y": 0, "z": 0}


class _Sink:
    """Keeps every message delivered to it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[_Sink, int]]:
    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def _report(client: Any, url: str, issue: str) -> dict[str, Any]:
    response = client.post(url + "/report-issue", json={"issue": issue, "boards": [BOARD]})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_admin_page_lists_and_clears_reports(make_service: Callable[..., Any]) -> None:
    service = make_service(report_action_threshold=2)
    alice, bob, root = login(service, "alice"), login(service, "bob"), login(service, "root")
    url, _ = alice.ready_job(board=BOARD)
    _report(alice, url, "smoke from <board> 0")
    job_id = url.rsplit("/", 1)[1]
    page_url = service.url + "system/admin/reports"
    assert alice.get(page_url).status_code == 403
    page = root.get(page_url)
    assert page.status_code == 200, page.text
    assert "smoke from &lt;board&gt; 0" in page.text  # escaped
    row = page.text.split('data-report="', 1)[1].split("</tr>", 1)[0]
    assert ">alice<" in row and f">{job_id}</a>" in row and "(0, 0, 0)" in row
    assert "in service" in row and "out of service" not in row
    assert alice.delete(url).status_code == 204
    url, _ = bob.ready_job(board=BOARD)
    assert _report(bob, url, "dead too")["action"] == "1 boards taken out of service"
    page = root.get(page_url).text
    assert page.count('data-report="') == 2 and "out of service" in page
    board_id = page.split('action="/spalloc/system/admin/reports/', 1)[1].split('"', 1)[0]
    assert alice.post(page_url + "/" + board_id, data={}).status_code == 403
    no_csrf = root.http.post(page_url + "/" + board_id, data={}, allow_redirects=False)
    assert no_csrf.status_code == 403
    cleared = root.post(page_url + "/" + board_id, data={})
    assert cleared.status_code == 303, cleared.text
    after = root.get(service.url.split("/spalloc/", 1)[0] + cleared.headers["location"])
    assert "No board reports." in after.text and "reports have been cleared" in after.text
    assert root.get("admin/board-reports").json()["reports"] == []


def test_each_new_report_is_mailed(
    make_service: Callable[..., Any], smtp_sink: tuple[_Sink, int]
) -> None:
    sink, port = smtp_sink
    service = make_service(
        report_email_to="ops@example.org",
        report_email_from="spalloc@example.org",
        smtp_host="127.0.0.1",
        smtp_port=port,
        report_action_threshold=1,
    )
    alice = login(service, "alice")
    url, _ = alice.ready_job(board=BOARD)
    _report(alice, url, "board 0 is on fire")
    wait_for(lambda: sink.messages or None, 20.0)
    (mail,) = sink.messages
    assert mail["To"] == "ops@example.org" and mail["From"] == "spalloc@example.org"
    assert "spin24 board [0,0,0]" in mail["Subject"]
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "board 0 is on fire" in text and "reported by alice" in text
    assert "OUT OF SERVICE" in text and f"job {url.rsplit('/', 1)[1]}" in text
    time.sleep(2.5)  # a further pass sends nothing more
    assert len(sink.messages) == 1


def test_a_silent_mail_server_never_delays_a_report(make_service: Callable[..., Any]) -> None:
    """An SMTP server that accepts and never answers: the report is answered at once,
    the service keeps serving, and it still stops promptly."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        service = make_service(
            report_email_to="ops@example.org",
            smtp_host="127.0.0.1",
            smtp_port=listener.getsockname()[1],
            smtp_timeout=3.0,
        )
        alice = login(service, "alice")
        url, _ = alice.ready_job(board=BOARD)
        began = time.monotonic()
        _report(alice, url, "slow mail")
        assert time.monotonic() - began < 2.0
        wait_for(lambda: accepted or None, 20.0)  # the mailer is stuck waiting ...
        assert alice.get("jobs").status_code == 200  # ... and nobody else is
        began = time.monotonic()
        service.stop()
        assert time.monotonic() - began < 15.0
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
