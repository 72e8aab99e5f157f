"""End-to-end browser tests of the web UI: Playwright driving Debian's Chromium.

Screenshots are saved under ``artifacts/screenshots/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyspalloc.server.web.machine_picture import DEAD_COLOUR, job_colour
from tests.conftest import USERS

CHROMIUM = os.environ.get("PYSPALLOC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("the playwright package is not installed", allow_module_level=True)
if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the environment
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

pytestmark = [
    pytest.mark.browser,
    # the browser looks at the pages, not at the database: SQLite is enough
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium: Browser) -> Iterator[Any]:
    """Make pages, each in its own browser context (own cookies); closed at the end."""
    contexts = []

    def make() -> Page:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as an artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Page, service: Any, name: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto(service.url + "system/login.html")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", USERS[name][0])
    page.click("input[type=submit][value='Log In']")
    page.wait_for_url(re.compile(r"/spalloc/system/?$"))
    expect(page.locator("header .who strong")).to_have_text(name)


def create_job(page: Page, service: Any, boards: int) -> int:
    """Create a job with the browser's own session through the REST API."""
    srv = service.url + "srv/spalloc/"
    token = page.request.get(srv).json()["csrf-token"]
    response = page.request.post(
        srv + "jobs",
        data={"num-boards": boards, "machine-name": "spin24", "keepalive-interval": "PT60S"},
        headers={"X-CSRF-TOKEN": token},
    )
    assert response.status == 201, response.text()
    return int(response.json()["job-id"])


def wait_ready(page: Page, service: Any, job: int) -> None:
    """Wait until the REST API reports the job READY."""
    url = f"{service.url}srv/spalloc/jobs/{job}"
    for _ in range(200):
        if page.request.get(url).json()["state"] == "READY":
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"job {job} did not become READY")


def test_login_see_job_on_machine_and_destroy_it(service: Any, new_page: Any) -> None:
    page = new_page()
    log_in(page, service, "alice")
    shot(page, "01-index")
    job = create_job(page, service, 3)
    wait_ready(page, service, job)

    page.click("nav >> text=Jobs")
    expect(page.locator(f"tr[data-job='{job}']")).to_contain_text("READY")
    shot(page, "01b-jobs")
    page.click("nav >> text=Machines")
    expect(page.locator("tr[data-machine=spin24]")).to_contain_text("spin24")
    shot(page, "02-machines")
    page.click("tr[data-machine=spin24] >> text=spin24")
    picture = page.locator("svg.machine-picture")
    expect(picture).to_be_visible()
    expect(picture.locator("polygon.board")).to_have_count(24)
    marked = picture.locator(f"polygon.job-{job}")
    expect(marked).to_have_count(3)
    for i in range(3):
        assert marked.nth(i).get_attribute("fill") == job_colour(job)
    expect(page.locator("ul.legend")).to_contain_text(f"Job {job} (alice)")
    shot(page, "03-machine-with-job")

    # the job's hexagons link to its page
    marked.first.click()
    page.wait_for_url(re.compile(rf"/job_info/{job}$"))
    expect(page.locator("#job-state")).to_have_text("READY")
    expect(page.locator("svg.machine-picture polygon.highlight")).to_have_count(3)
    shot(page, "04-job")

    page.fill("form.destroy input[name=reason]", "done with it")
    page.click("form.destroy button[type=submit]")
    expect(page.locator("p.notice")).to_contain_text("being destroyed")
    expect(page.locator("#job-state")).to_have_text("DESTROYED")
    expect(page.locator("dl.facts")).to_contain_text("done with it")
    expect(page.locator("form.destroy")).to_have_count(0)
    shot(page, "05-job-destroyed")


def test_non_admin_is_refused_admin_pages(service: Any, new_page: Any) -> None:
    page = new_page()
    log_in(page, service, "bob")
    expect(page.locator("nav a", has_text="Admin")).to_have_count(0)
    for path in ("admin", "admin/users", "admin/groups", "admin/boards"):
        response = page.goto(f"{service.url}system/{path}")
        assert response is not None and response.status == 403, path
    expect(page.locator("h1")).to_have_text("Forbidden")
    expect(page.locator("body")).to_contain_text("computer says no")
    shot(page, "06-admin-refused")
    # every page has a working log-out button
    page.click("header form.logout button")
    page.wait_for_url(re.compile(r"/login\.html$"))
    response = page.goto(service.url + "system/list_jobs")
    assert response is not None and response.url.endswith("/login.html")


def test_admin_takes_a_board_out_of_service(service: Any, new_page: Any) -> None:
    page = new_page()
    log_in(page, service, "root")
    page.click("nav >> text=Admin")
    shot(page, "07-admin-index")
    page.click("text=Users")
    expect(page.locator("tr[data-user=alice]")).to_be_visible()
    shot(page, "08-admin-users")
    page.goto(service.url + "system/admin/groups")
    page.fill("form.stacked input[name=name]", "team")
    page.fill("form.stacked input[name=quota]", "12.5")
    page.click("form.stacked button[type=submit]")
    expect(page.locator("h1")).to_have_text("Group team")
    page.select_option("select[name=username]", "alice")
    page.click("form.inline >> text=Add")
    expect(page.locator("li[data-member=alice]")).to_be_visible()
    shot(page, "08b-admin-group")
    page.goto(service.url + "system/admin/boards?machine=spin24")
    row = page.locator("tr[data-board='1,1,0']")
    row.locator("button", has_text="Disable").click()
    expect(page.locator("p.notice")).to_contain_text("out of service")
    expect(page.locator("tr[data-board='1,1,0']")).to_have_class("out-of-service")
    dead = page.locator("svg.machine-picture polygon.dead")
    expect(dead).to_have_count(1)
    assert dead.get_attribute("data-triad") == "1,1,0"
    assert dead.get_attribute("fill") == DEAD_COLOUR
    shot(page, "09-admin-board-disabled")


def test_machine_page_updates_itself(service: Any, new_page: Any) -> None:
    page = new_page()
    log_in(page, service, "alice")
    page.goto(service.url + "system/machine_info/spin24")
    expect(page.locator("svg.machine-picture polygon.job")).to_have_count(0)
    job = create_job(page, service, 6)
    # no reload: the page's script fetches it again every few seconds
    expect(page.locator(f"svg.machine-picture polygon.job-{job}")).to_have_count(6, timeout=20000)
    expect(page.locator("#updated")).to_contain_text("updated")
    shot(page, "10-machine-live-update")
