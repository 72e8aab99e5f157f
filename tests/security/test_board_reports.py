"""One user must not take boards out of service: ``report-issue`` counts distinct
reporting users, caps the issue text, and admins can see and clear the reports."""

from __future__ import annotations

from typing import Any

from pyspalloc.server.store import Store
from tests.support.http_client import Http, login

BOARD = {"x": 0, "y": 0, "z": 0}


def _functioning(service: Any) -> bool:
    store = Store(service.config.database_url())
    try:
        machine = store.machine("spin24")
        assert machine is not None
        board = store.board_at(machine.id, 0, 0, 0)
        assert board is not None
        return board.functioning
    finally:
        store.close()


def _report(client: Http, url: str, issue: str, copies: int = 2) -> dict[str, Any]:
    response = client.post(
        url + "/report-issue", json={"issue": issue, "boards": [{"chip": [0, 0]}] * copies}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_one_user_cannot_take_a_board_out_of_service(vservice: Any) -> None:
    alice, bob = login(vservice, "alice"), login(vservice, "bob")
    url, _ = alice.ready_job(60.0, board=BOARD)
    assert _report(alice, url, "broken?")["action"] == "report noted"
    assert _functioning(vservice)  # two entries of one request: one report
    assert _report(alice, url, "still broken?", copies=5)["action"] == "report noted"
    assert alice.delete(url).status_code == 204
    url, _ = alice.ready_job(60.0, board=BOARD)  # the same user, another job
    assert _report(alice, url, "broken again")["action"] == "report noted"
    assert _functioning(vservice)
    assert alice.delete(url).status_code == 204
    url, _ = bob.ready_job(60.0, board=BOARD)  # a second user agrees: out of service
    assert _report(bob, url, "broken for me too")["action"] == "1 boards taken out of service"
    assert not _functioning(vservice)


def test_issue_text_is_capped(vservice: Any) -> None:
    alice = login(vservice, "alice")
    url, _ = alice.ready_job(60.0, board=BOARD)
    ok = alice.post(url + "/report-issue", json={"issue": "x" * 1000, "boards": [BOARD]})
    assert ok.status_code == 200, ok.text
    long = alice.post(url + "/report-issue", json={"issue": "x" * 1400, "boards": [BOARD]})
    assert long.status_code == 400
    assert long.text == "issue is too long (at most 1000 characters)"


def test_admins_see_and_clear_reports(vservice: Any) -> None:
    alice, root, rita = login(vservice, "alice"), login(vservice, "root"), login(vservice, "rita")
    url, _ = alice.ready_job(60.0, board=BOARD)
    _report(alice, url, "smoke from board 0")
    for outsider in (alice, rita):
        assert outsider.get("admin/board-reports").status_code == 403
    listed = root.get("admin/board-reports")
    assert listed.status_code == 200, listed.text
    reports = listed.json()["reports"]
    assert [(r["board"], r["reporter"], r["issue"]) for r in reports] == [
        ([0, 0, 0], "alice", "smoke from board 0")
    ]
    board_id = reports[0]["board-id"]
    assert alice.delete(f"admin/board-reports/{board_id}").status_code == 403
    cleared = root.delete(f"admin/board-reports/{board_id}")
    assert cleared.status_code == 200 and cleared.json()["cleared"] == 1
    assert root.get("admin/board-reports").json()["reports"] == []
