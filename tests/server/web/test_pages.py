"""Server-side tests of the HTML pages, against the real service on a loopback port."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from markupsafe import escape

from pyspalloc.server.web.machine_picture import job_colour
from tests.server.web.helpers import SRV, SYSTEM, Browser, polygons

ADMIN = SYSTEM + "/admin"
USER_PAGES = [
    SYSTEM,
    SYSTEM + "/list_machines",
    SYSTEM + "/machine_info/spin24",
    SYSTEM + "/list_jobs",
    SYSTEM + "/list_jobs?deleted=true",
    SYSTEM + "/change_password",
]
ADMIN_PAGES = [
    ADMIN,
    ADMIN + "/users",
    ADMIN + "/groups",
    ADMIN + "/groups/1",
    ADMIN + "/boards",
    ADMIN + "/boards?machine=spin24",
]


class Logins(dict[str, Browser]):
    """Browsers logged in on first use (each login costs an argon2 check)."""

    def __init__(self, service: Any) -> None:
        super().__init__()
        self.service = service

    def __missing__(self, name: str) -> Browser:
        b = Browser(self.service)
        assert b.login(name).status_code == 302
        self[name] = b
        return b


@pytest.fixture
def browsers(service: Any) -> Iterator[dict[str, Browser]]:
    """Browsers for alice, bob (users) and root (admin), logged in when first used."""
    made = Logins(service)
    yield made
    for b in made.values():
        b.close()


def test_pages_render_for_a_user(browsers: dict[str, Browser]) -> None:
    alice = browsers["alice"]
    job = alice.create_job(**{"num-boards": 1})
    alice.wait_state(job, "READY")
    for path in [*USER_PAGES, f"{SYSTEM}/job_info/{job}"]:
        response = alice.page(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("text/html")
        text = response.text
        assert "Signed in as <strong>alice</strong>" in text
        assert f'action="{SYSTEM}/perform_logout"' in text, path
        assert 'name="_csrf"' in text
        assert f'href="{ADMIN}"' not in text  # no admin link for users


def test_index_lists_machines_and_own_jobs(browsers: dict[str, Browser]) -> None:
    alice = browsers["alice"]
    job = alice.create_job(**{"num-boards": 2})
    text = alice.page(SYSTEM).text
    assert f"{SYSTEM}/machine_info/spin24" in text
    assert f"{SYSTEM}/job_info/{job}" in text
    assert "version" in text
    assert f'href="{ADMIN}"' in browsers["root"].page(SYSTEM).text


def test_machine_list_shows_utilisation(browsers: dict[str, Browser]) -> None:
    alice = browsers["alice"]
    job = alice.create_job(**{"num-boards": 6})
    alice.wait_state(job, "READY")
    text = alice.page(SYSTEM + "/list_machines").text
    row = re.search(r'<tr data-machine="spin24">(.*?)</tr>', text, re.S)
    assert row, text
    cells = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)
    ]
    assert cells[:3] == ["spin24", "24", "6"]
    assert cells[3].endswith("25%")
    assert cells[5] == "1"


def test_pages_need_login(service: Any) -> None:
    b = Browser(service)
    for path in [*USER_PAGES, *ADMIN_PAGES]:
        response = b.http.get(path)
        assert response.status_code == 302, path
        assert response.headers["location"].endswith("/spalloc/system/login.html")
    api = b.http.get(SYSTEM + "/list_jobs", headers={"Accept": "*/*"})
    assert api.status_code == 401
    b.close()


def test_resources_need_no_login(service: Any) -> None:
    b = Browser(service)
    css = b.http.get(SYSTEM + "/resources/spalloc.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert b.http.get(SYSTEM + "/resources/live.js").status_code == 200
    for bad in ("../ui.py", "nothing.css", "%2e%2e%2fui.py"):
        assert b.http.get(SYSTEM + "/resources/" + bad).status_code == 404
    b.close()


def test_login_page_still_parsable_by_spinnman(service: Any) -> None:
    b = Browser(service)
    text = b.http.get(SYSTEM + "/login.html").text
    assert re.search(r'<input type="hidden" name="_csrf" value="(.*)" />', text)
    b.close()


def test_admin_pages_render_for_an_admin(browsers: dict[str, Browser]) -> None:
    root = browsers["root"]
    for path in ADMIN_PAGES:
        response = root.page(path)
        assert response.status_code == 200, (path, response.text)
        assert f'action="{SYSTEM}/perform_logout"' in response.text


def test_admin_pages_are_forbidden_to_users(browsers: dict[str, Browser]) -> None:
    alice = browsers["alice"]
    alice.page(SYSTEM)
    for path in ADMIN_PAGES:
        refused = alice.page(path)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("text/html")
        assert "<h1>Forbidden</h1>" in refused.text
        assert f'action="{SYSTEM}/perform_logout"' in refused.text
    # the forms too, even with a valid CSRF token
    alice.page(SYSTEM)
    posts = {
        ADMIN + "/users": {"username": "mallory", "password": "mallory-pw", "role": "ADMIN"},
        ADMIN + "/users/1": {"action": "role", "role": "ADMIN"},
        ADMIN + "/groups": {"name": "evil"},
        ADMIN + "/groups/1": {"action": "add", "username": "alice"},
        ADMIN + "/boards/1": {"action": "disable"},
    }
    for path, data in posts.items():
        assert alice.form(path, data).status_code == 403, path
    root = browsers["root"]
    users = root.page(ADMIN + "/users").text
    assert "mallory" not in users
    assert "out-of-service" not in root.page(ADMIN + "/boards").text


def _first_board_id(root: Browser, triad: str = "0,0,0") -> int:
    text = root.page(ADMIN + "/boards?machine=spin24").text
    row = re.search(rf'<tr data-board="{triad}".*?action="{ADMIN}/boards/(\d+)"', text, re.S)
    assert row, text
    return int(row[1])


def test_forms_without_csrf_are_refused(browsers: dict[str, Browser]) -> None:
    alice, root = browsers["alice"], browsers["root"]
    job = alice.create_job(**{"num-boards": 1})
    alice.wait_state(job, "READY")
    board = _first_board_id(root)
    cases = [
        (alice, f"{SYSTEM}/delete_job/{job}", {"reason": "csrf"}),
        (alice, f"{SYSTEM}/power_job/{job}", {"power": "off"}),
        (
            alice,
            SYSTEM + "/change_password",
            {"old": "alice-pw-1", "new": "x" * 10, "again": "x" * 10},
        ),
        (root, ADMIN + "/users", {"username": "eve", "password": "eve-password", "role": "USER"}),
        (root, ADMIN + "/users/1", {"action": "disable"}),
        (root, ADMIN + "/groups", {"name": "sneaky"}),
        (root, ADMIN + "/groups/1", {"action": "add", "username": "bob"}),
        (root, f"{ADMIN}/boards/{board}", {"action": "disable"}),
    ]
    for who, path, data in cases:
        assert who.form(path, data, csrf=False).status_code == 403, path
        assert who.form(path, {**data, "_csrf": "wrong"}, csrf=False).status_code == 403, path
    # bob's token is no good in alice's session
    bob_token = browsers["bob"].page(SYSTEM).text
    token = re.search(r'name="_csrf" value="([^"]*)"', bob_token)
    assert token
    refused = alice.form(f"{SYSTEM}/delete_job/{job}", {"_csrf": token[1]}, csrf=False)
    assert refused.status_code == 403
    # nothing happened
    assert alice.job_state(job)["state"] == "READY"
    assert alice.job_state(job).get("reason") is None
    assert "eve" not in root.page(ADMIN + "/users").text
    assert "sneaky" not in root.page(ADMIN + "/groups").text
    assert "out-of-service" not in root.page(ADMIN + "/boards").text
    assert alice.login("alice").status_code == 302  # password unchanged


def test_machine_picture_has_one_hexagon_per_board(browsers: dict[str, Browser]) -> None:
    alice = browsers["alice"]
    job = alice.create_job(**{"num-boards": 3})
    alice.wait_state(job, "READY")
    held = set(alice.job_boards(job))
    assert len(held) == 3
    text = alice.page(SYSTEM + "/machine_info/spin24").text
    boards = [p for p in polygons(text) if "board" in p["class"].split()]
    assert len(boards) == 24
    assert len({p["data-triad"] for p in boards}) == 24
    mine = [p for p in boards if p.get("data-job") == str(job)]
    assert {tuple(int(v) for v in p["data-triad"].split(",")) for p in mine} == held
    for p in mine:
        assert f"job-{job}" in p["class"].split()
        assert p["fill"] == job_colour(job)
        assert len(p["points"].split()) == 6
    others = [p for p in boards if p.get("data-job") is None]
    assert all("free" in p["class"].split() and p["fill"] == "#ffffff" for p in others)
    # the legend names the job with its colour and links to it
    assert re.search(rf'<svg class="swatch"[^>]*><rect [^>]*fill="{job_colour(job)}"', text)
    assert f'href="{SYSTEM}/job_info/{job}"' in text
    # hover titles carry triad, physical coordinates, IP and job
    assert re.search(
        rf"<title>Board \(\d, \d, \d\)\nphysical \[0, 0, \d+\]\nIP [\d.]+\n"
        rf"job {job} owned by alice</title>",
        text,
    )


def test_picture_hides_other_owners(browsers: dict[str, Browser]) -> None:
    alice, bob = browsers["alice"], browsers["bob"]
    job = alice.create_job(**{"num-boards": 1})
    alice.wait_state(job, "READY")
    text = bob.page(SYSTEM + "/machine_info/spin24").text
    assert f"job {job}</title>" in text
    assert "owned by alice" not in text
    assert f'href="{SYSTEM}/job_info/{job}"' not in text
    assert f'data-job="{job}"' in text


def test_dead_boards_are_marked(browsers: dict[str, Browser]) -> None:
    root = browsers["root"]
    board = _first_board_id(root, "1,0,2")
    assert root.form(f"{ADMIN}/boards/{board}", {"action": "disable"}).status_code == 303
    text = browsers["alice"].page(SYSTEM + "/machine_info/spin24").text
    dead = [p for p in polygons(text) if "dead" in p["class"].split()]
    assert [p["data-triad"] for p in dead] == ["1,0,2"]
    assert "\u2620" in text
    assert "out of service</title>" in text


def test_job_page_power_and_destroy(browsers: dict[str, Browser]) -> None:
    alice = browsers["alice"]
    job = alice.create_job(**{"num-boards": 3})
    alice.wait_state(job, "READY")
    page = alice.page(f"{SYSTEM}/job_info/{job}")
    text = page.text
    assert 'id="job-state">READY<' in text
    assert "alice" in text and "keepalive" in text.lower()
    assert f'action="{SYSTEM}/power_job/{job}"' in text and "Power off" in text
    assert f'action="{SYSTEM}/delete_job/{job}"' in text and 'name="reason"' in text
    highlighted = [p for p in polygons(text) if "highlight" in p["class"].split()]
    assert len(highlighted) == 3
    assert all(p["fill"] == job_colour(job) for p in highlighted)

    off = alice.form(f"{SYSTEM}/power_job/{job}", {"power": "off"})
    assert off.status_code == 303
    assert off.headers["location"].startswith(f"{SYSTEM}/job_info/{job}?")
    alice.wait_state(job, "READY")
    power = alice.http.get(f"{SRV}/jobs/{job}/machine/power", headers={"Accept": "*/*"})
    assert power.json() == {"power": "OFF"}
    text = alice.page(f"{SYSTEM}/job_info/{job}").text
    assert "Power on" in text

    gone = alice.form(f"{SYSTEM}/delete_job/{job}", {"reason": "finished <b>early</b>"})
    assert gone.status_code == 303
    follow = alice.page(gone.headers["location"])
    assert "being destroyed" in follow.text
    assert 'id="job-state">DESTROYED<' in follow.text
    assert "finished &lt;b&gt;early&lt;/b&gt;" in follow.text
    assert "<b>early</b>" not in follow.text
    state = alice.job_state(job)
    assert state["state"] == "DESTROYED" and state["reason"] == "finished <b>early</b>"
    assert f'action="{SYSTEM}/delete_job/{job}"' not in follow.text


def test_other_users_cannot_see_or_destroy_a_job(browsers: dict[str, Browser]) -> None:
    alice, bob, root = browsers["alice"], browsers["bob"], browsers["root"]
    job = alice.create_job(**{"num-boards": 1})
    hidden = bob.page(f"{SYSTEM}/job_info/{job}")
    assert hidden.status_code == 404 and "no such job" in hidden.text
    bob.page(SYSTEM)
    assert bob.form(f"{SYSTEM}/delete_job/{job}", {"reason": "mine now"}).status_code == 404
    assert bob.form(f"{SYSTEM}/power_job/{job}", {"power": "off"}).status_code == 404
    assert alice.job_state(job)["state"] != "DESTROYED"
    # an admin may
    assert root.page(f"{SYSTEM}/job_info/{job}").status_code == 200
    assert root.form(f"{SYSTEM}/delete_job/{job}", {"reason": "admin"}).status_code == 303
    assert alice.job_state(job)["state"] == "DESTROYED"


def test_job_list_shrouds_other_owners(browsers: dict[str, Browser]) -> None:
    alice, bob = browsers["alice"], browsers["bob"]
    job = alice.create_job(**{"num-boards": 1})
    text = bob.page(SYSTEM + "/list_jobs").text
    row = re.search(rf'<tr data-job="{job}".*?</tr>', text, re.S)
    assert row and "alice" not in row[0]
    assert f"job_info/{job}" not in row[0]
    mine = re.search(rf'<tr data-job="{job}".*?</tr>', alice.page(SYSTEM + "/list_jobs").text, re.S)
    assert mine and "alice" in mine[0] and f"job_info/{job}" in mine[0]


def test_board_disable_stops_allocation(browsers: dict[str, Browser]) -> None:
    alice, root = browsers["alice"], browsers["root"]
    board = _first_board_id(root, "2,1,1")
    response = root.form(f"{ADMIN}/boards/{board}", {"action": "disable"})
    assert response.status_code == 303
    follow = root.page(response.headers["location"])
    assert "out of service" in follow.text
    assert re.search(r'<tr data-board="2,1,1" class="out-of-service">', follow.text)
    # a job for exactly that board is refused
    refused = alice.create_job_response(board={"x": 2, "y": 1, "z": 1})
    assert refused.status_code == 400, refused.text
    # a job that needs every board waits, and gets them once the board is back
    whole = alice.create_job(**{"num-boards": 24})
    time.sleep(2.0)  # several allocator passes (period 0.5 s)
    assert alice.job_state(whole)["state"] == "QUEUED"
    root.page(ADMIN + "/boards?machine=spin24")
    assert root.form(f"{ADMIN}/boards/{board}", {"action": "enable"}).status_code == 303
    alice.wait_state(whole, "READY")
    assert len(alice.job_boards(whole)) == 24


def test_board_disable_keeps_the_current_job(browsers: dict[str, Browser]) -> None:
    alice, root = browsers["alice"], browsers["root"]
    job = alice.create_job(board={"x": 0, "y": 0, "z": 0})
    alice.wait_state(job, "READY")
    board = _first_board_id(root, "0,0,0")
    assert root.form(f"{ADMIN}/boards/{board}", {"action": "disable"}).status_code == 303
    assert alice.job_state(job)["state"] == "READY"
    assert alice.job_boards(job) == [(0, 0, 0)]
    alice.http.delete(f"{SRV}/jobs/{job}", headers={"X-CSRF-TOKEN": alice.rest_token()})
    alice.wait_state(job, "DESTROYED")
    again = alice.create_job_response(board={"x": 0, "y": 0, "z": 0})
    assert again.status_code == 400


def test_change_password(browsers: dict[str, Browser], service: Any) -> None:
    alice = browsers["alice"]
    alice.page(SYSTEM + "/change_password")
    wrong = alice.form(
        SYSTEM + "/change_password", {"old": "nope", "new": "new-pw-123", "again": "new-pw-123"}
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    differ = alice.form(
        SYSTEM + "/change_password",
        {"old": "alice-pw-1", "new": "new-pw-123", "again": "new-pw-124"},
    )
    assert differ.status_code == 400
    short = alice.form(
        SYSTEM + "/change_password", {"old": "alice-pw-1", "new": "short", "again": "short"}
    )
    assert short.status_code == 400
    ok = alice.form(
        SYSTEM + "/change_password",
        {"old": "alice-pw-1", "new": "new-pw-123", "again": "new-pw-123"},
    )
    assert ok.status_code == 303
    assert "has been changed" in alice.page(ok.headers["location"]).text
    fresh = Browser(service)
    assert fresh.login("alice", "alice-pw-1").status_code == 401
    assert fresh.login("alice", "new-pw-123").status_code == 302
    fresh.close()


def test_admin_manages_users(browsers: dict[str, Browser], service: Any) -> None:
    root = browsers["root"]
    root.page(ADMIN + "/users")
    made = root.form(
        ADMIN + "/users", {"username": "carol", "password": "carol-pw-1", "role": "READER"}
    )
    assert made.status_code == 303
    text = root.page(ADMIN + "/users").text
    assert 'data-user="carol"' in text
    again = root.form(
        ADMIN + "/users", {"username": "carol", "password": "carol-pw-1", "role": "USER"}
    )
    assert again.status_code == 400 and "already a user called carol" in again.text
    bad = root.form(ADMIN + "/users", {"username": "<x>", "password": "carol-pw-1", "role": "USER"})
    assert bad.status_code == 400

    carol = Browser(service)
    assert carol.login("carol", "carol-pw-1").status_code == 302
    assert carol.page(SYSTEM + "/list_machines").status_code == 200
    # READER may look but not create jobs
    assert carol.create_job_response(**{"num-boards": 1}).status_code == 403

    row = re.search(r'<tr data-user="carol">.*?action="[^"]*/users/(\d+)"', text, re.S)
    assert row
    carol_id = row[1]
    root.page(ADMIN + "/users")
    assert (
        root.form(f"{ADMIN}/users/{carol_id}", {"action": "role", "role": "USER"}).status_code
        == 303
    )
    assert carol.create_job_response(**{"num-boards": 1}).status_code == 201

    assert root.form(f"{ADMIN}/users/{carol_id}", {"action": "disable"}).status_code == 303
    assert carol.page(SYSTEM + "/list_machines").status_code == 302  # session ended
    assert Browser(service).login("carol", "carol-pw-1").status_code == 401
    assert root.form(f"{ADMIN}/users/{carol_id}", {"action": "enable"}).status_code == 303
    reset = root.form(f"{ADMIN}/users/{carol_id}", {"action": "password", "password": "carol-pw-2"})
    assert reset.status_code == 303
    fresh = Browser(service)
    assert fresh.login("carol", "carol-pw-1").status_code == 401
    assert fresh.login("carol", "carol-pw-2").status_code == 302

    # an admin cannot lock themselves out
    me = re.search(r'<tr data-user="root">.*?action="[^"]*/users/(\d+)"', text, re.S)
    assert me
    assert root.form(f"{ADMIN}/users/{me[1]}", {"action": "disable"}).status_code == 400
    assert (
        root.form(f"{ADMIN}/users/{me[1]}", {"action": "role", "role": "USER"}).status_code == 400
    )
    assert root.page(ADMIN).status_code == 200


def test_admin_manages_groups(browsers: dict[str, Browser]) -> None:
    root = browsers["root"]
    root.page(ADMIN + "/groups")
    made = root.form(ADMIN + "/groups", {"name": "team", "quota": "10"})
    assert made.status_code == 303
    group_page = made.headers["location"].split("?")[0]
    text = root.page(group_page).text
    assert "Group team" in text and "10.0 board-hours" in text and "No members." in text
    assert root.form(group_page, {"action": "add", "username": "alice"}).status_code == 303
    assert root.form(group_page, {"action": "add", "username": "bob"}).status_code == 303
    assert root.form(group_page, {"action": "add", "username": "bob"}).status_code == 400
    assert root.form(group_page, {"action": "add", "username": "nobody"}).status_code == 400
    text = root.page(group_page).text
    assert 'data-member="alice"' in text and 'data-member="bob"' in text
    assert root.form(group_page, {"action": "remove", "username": "alice"}).status_code == 303
    text = root.page(group_page).text
    assert 'data-member="alice"' not in text and 'data-member="bob"' in text
    listing = root.page(ADMIN + "/groups").text
    row = re.search(r'<tr data-group="team">.*?</tr>', listing, re.S)
    assert row and ">1<" in row[0]
    assert root.form(ADMIN + "/groups", {"name": "team"}).status_code == 400
    assert root.form(ADMIN + "/groups", {"name": "q", "quota": "lots"}).status_code == 400
    users = root.page(ADMIN + "/users").text
    assert re.search(r'<tr data-user="bob">.*?team', users, re.S)


def test_output_is_escaped(browsers: dict[str, Browser]) -> None:
    alice = browsers["alice"]
    job = alice.create_job(**{"num-boards": 1})
    token = alice.rest_token()
    alice.http.delete(
        f"{SRV}/jobs/{job}",
        params={"reason": '<script>alert("x")</script>'},
        headers={"X-CSRF-TOKEN": token},
    )
    alice.wait_state(job, "DESTROYED")
    text = alice.page(f"{SYSTEM}/job_info/{job}").text
    assert "<script>alert" not in text
    assert str(escape('<script>alert("x")</script>')) in text


def test_logout_form_ends_the_session(browsers: dict[str, Browser]) -> None:
    alice = browsers["alice"]
    alice.page(SYSTEM + "/list_jobs")
    assert alice.form(SYSTEM + "/perform_logout", {}, csrf=False).status_code == 403
    out = alice.form(SYSTEM + "/perform_logout", {})
    assert out.status_code == 302 and out.headers["location"].endswith("/login.html")
    assert alice.page(SYSTEM + "/list_jobs").status_code == 302
