"""Every view with realistic data, at desktop and tablet width, its URL and its times; the screenshots in
docs/ come from here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.config import DEFAULT_KB_SEED
from tests.browser.conftest import DOCS, Api, open_console
from tests.server_process import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWS = {"pending": "Pending", "history": "History", "learned": "Learned answers", "overview": "Overview"}


@pytest.fixture(scope="module")
def salon_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the starter KB and a morning's worth of calls."""
    server = ServerProcess(tmp_path_factory.mktemp("views"), KB_SEED_FILE=str(DEFAULT_KB_SEED)).start()
    api = Api(server.base)
    kb = api.http.get("/api/knowledge-base").json()
    for entry in kb[:9]:
        api.http.post(f"/api/knowledge-base/{entry['id']}/uses")
    answered = api.ask(
        "Do you offer scalp treatments?",
        name="Maya",
        customer_contact="+14155550123",
        transcript=[
            {"role": "agent", "text": "Thank you for calling Maple & Shear Salon."},
            {"role": "caller", "text": "Do you offer scalp treatments?"},
        ],
    )
    api.answer(answered["id"], "Yes: a 40-minute scalp treatment is $55.", answered_by="Priya")
    unsure = api.ask("Can I bring my dog to my appointment?", name="Leo", customer_contact="+12175550142")
    api.http.post(
        f"/api/help-requests/{unsure['id']}/response",
        json={"unresolved": True, "answered_by": "Priya", "notes": "Ask the owner"},
    )
    on_line = api.ask(
        "Do you do hair tinsel?",
        name="Noor",
        customer_contact="+14155550999",
        transcript=[
            {"role": "caller", "text": "Hi! Do you do hair tinsel? It's for a party on Friday."},
            {"role": "agent", "text": "Let me check with my supervisor and get back to you."},
        ],
    )
    api.http.post(f"/api/help-requests/{on_line['id']}/presence", json={"on_line": True})
    api.ask("Is there a discount for students?", name="Sam", customer_contact="+12175550177")
    api.ask("Can my stylist come to my house for a wedding?", name="Ana", channel="web")
    api.http.close()
    yield server
    server.stop()


@pytest.fixture
def tablet(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 768, "height": 1024}, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _show(page: Page, view: str) -> None:
    page.get_by_role("button", name=VIEWS[view]).click()
    expect(page.locator(f"#view-{view}")).to_be_visible()


def test_screenshot_of_each_view(page: Page, salon_day: ServerProcess) -> None:
    DOCS.mkdir(exist_ok=True)
    open_console(page, salon_day.base)
    expect(page.locator("#pending-list .card")).to_have_count(3)
    tinsel = page.locator("#pending-list .card", has_text="tinsel")
    expect(tinsel.locator(".on-line")).to_be_visible()
    tinsel.locator(".transcript summary").click()
    page.screenshot(path=DOCS / "console-pending.png", full_page=True)

    _show(page, "history")
    page.locator("#history-list .row", has_text="scalp").locator("summary").first.click()
    page.screenshot(path=DOCS / "console-history.png", full_page=True)

    _show(page, "learned")
    expect(page.locator("#kb-list .kb").first).to_be_visible()
    page.screenshot(path=DOCS / "console-learned.png")

    _show(page, "overview")
    expect(page.locator("#stats-table tbody tr")).to_have_count(14)
    expect(page.locator("#tiles")).to_contain_text("Answered from the KB today")
    # 9 KB answers and 5 escalations today: 64 % without escalation.
    expect(page.locator("#stats-table tbody tr").first).to_contain_text("64%")
    page.screenshot(path=DOCS / "console-overview.png", full_page=True)


def test_views_fit_a_tablet(tablet: Page, salon_day: ServerProcess) -> None:
    open_console(tablet, salon_day.base)
    for view in VIEWS:
        _show(tablet, view)
        overflow = tablet.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{view} scrolls sideways by {overflow}px at tablet width"
    _show(tablet, "pending")
    tablet.screenshot(path=DOCS / "console-tablet.png")


def test_every_control_has_a_name(page: Page, salon_day: ServerProcess) -> None:
    open_console(page, salon_day.base)
    for view in VIEWS:
        _show(page, view)
        unnamed = page.evaluate(
            """() => [...document.querySelectorAll('button, input, textarea, select')]
                .filter(el => el.offsetParent !== null)
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                              && !el.textContent.trim())
                .map(el => el.outerHTML.slice(0, 80))"""
        )
        assert unnamed == [], f"{view}: controls with no accessible name: {unnamed}"


def test_each_view_has_its_own_url(page: Page, salon_day: ServerProcess) -> None:
    open_console(page, salon_day.base)
    for view in ("history", "learned", "overview"):
        _show(page, view)
        assert page.url == f"{salon_day.base}/#/{view}"
        page.reload()
        page.locator("#live.on").wait_for()
        expect(page.locator(f"#view-{view}")).to_be_visible()
        expect(page.locator("#view-pending")).to_be_hidden()
        expect(page.get_by_role("button", name=VIEWS[view])).to_have_attribute("aria-current", "page")

    page.go_back()
    expect(page.locator("#view-learned")).to_be_visible()
    page.go_back()
    expect(page.locator("#view-history")).to_be_visible()
    page.go_forward()
    expect(page.locator("#view-learned")).to_be_visible()

    shared = page.context.new_page()
    open_console(shared, salon_day.base, "/#/history")
    expect(shared.locator("#history-list .row", has_text="scalp")).to_be_visible()
    expect(shared.locator("#view-pending")).to_be_hidden()


ZONE = "Asia/Kolkata"  # +05:30: a time shown in UTC or the server's zone cannot pass for local


def _local(iso: str) -> str:
    """How the console should show an instant to a supervisor in ZONE with an en-US browser."""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(ZONE)).strftime("%b %-d, %Y, %-I:%M:%S %p")


def _texts(locator: Locator) -> list[dict[str, str]]:
    # Chromium puts a narrow no-break space before AM/PM: compare with plain spaces.
    return [
        {**t, "text": " ".join(t["text"].split())}
        for t in locator.evaluate_all("els => els.map(e => ({iso: e.dateTime, title: e.title, text: e.textContent}))")
    ]


def test_times_are_local_and_in_one_format(browser: Browser, salon_day: ServerProcess) -> None:
    context = browser.new_context(locale="en-US", timezone_id=ZONE, viewport={"width": 1280, "height": 860})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        open_console(page, salon_day.base)
        _show(page, "history")
        row = page.locator("#history-list .row", has_text="scalp")
        row.locator("summary").first.click()
        # The follow-up's delivery is the request's last event: after it the page and the API agree.
        expect(row.locator(".timeline")).to_contain_text("Follow-up with the answer sent")
        api = Api(salon_day.base)
        done = api.http.get("/api/help-requests", params={"status": "resolved"}).json()
        scalp = next(r for r in done if "scalp" in r["question"])
        entry = next(e for e in api.http.get("/api/knowledge-base").json() if e["source_request_id"] == scalp["id"])
        api.http.close()
        assert " ".join(row.locator(".when").inner_text().split()) == f"· {_local(scalp['resolved_at'])}"
        stamps = _texts(row.locator(".timeline li > time:first-child"))
        assert [t["text"] for t in stamps] == [_local(h["timestamp"]) for h in scalp["history"]]
        timeline = " ".join(row.locator(".timeline").inner_text().split())
        assert f"times out at {_local(scalp['expires_at'])}" in timeline
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", timeline), timeline
        every = _texts(row.locator("time"))
        assert len(every) == len(scalp["history"]) + 2  # the stamps, when it closed, when it would time out
        assert all(t["text"] == _local(t["iso"]) and t["title"] == t["iso"] for t in every), every

        _show(page, "learned")
        learned = _texts(page.locator(f"#kb-list .kb[data-id='{entry['id']}'] .meta time"))
        assert [t["text"] for t in learned] == [_local(entry["updated_at"])]
    finally:
        context.close()
