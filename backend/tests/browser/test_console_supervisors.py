"""Named supervisors in the console: who is signed in, whose answer won a race, a revoked token."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Api, open_console
from tests.server_process import ServerProcess
from tests.support import supervisors_command

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _add(server: ServerProcess, name: str) -> str:
    added = supervisors_command(server.env["DATABASE_URL"], "add", name)
    assert added.returncode == 0, added.stderr
    return added.stdout.strip()


def test_the_console_that_loses_a_race_shows_the_winners_name_and_answer(page: Page, tmp_path: Path) -> None:
    # No SUPERVISOR_TOKEN: the accounts alone turn auth on.
    server = ServerProcess(tmp_path)
    priya, bob = _add(server, "Priya"), _add(server, "Bob")
    server.start()
    try:
        word = "Zq" + uuid.uuid4().hex[:6]
        as_priya = Api(server.base, token=priya)
        req = as_priya.ask(f"Do you sell {word} combs?")

        def no_live_updates(route: Route) -> None:
            route.abort()

        # Without the event stream Bob's page cannot know Priya got there first: it learns it from the 409.
        page.route("**/api/events", no_live_updates)
        page.goto(server.base + "/")
        dialog = page.get_by_role("dialog", name="Sign in")
        dialog.get_by_label("Supervisor token").fill(bob)
        dialog.get_by_role("button", name="Sign in").click()
        expect(page.locator("#me")).to_have_text("Signed in as Bob")
        card = page.locator("#pending-list .card", has_text=word)
        expect(card).to_be_visible()

        assert as_priya.answer(req["id"], f"Yes, {word} combs are $9.").status_code == 200
        card.get_by_label("Answer", exact=True).fill("No, sorry.")
        card.get_by_role("button", name="Send answer").click()
        expect(card.locator(".outcome")).to_contain_text(f"Already answered by Priya: “Yes, {word} combs are $9.”")
        expect(card.locator(".outcome time")).to_have_count(1)
        card.get_by_role("button", name="Dismiss").click()

        page.get_by_role("button", name="History").click()
        row = page.locator("#history-list .row", has_text=word)
        row.locator("summary").first.click()
        expect(row.locator(".by")).to_contain_text("Answered by Priya")
        expect(row.locator(".timeline")).to_contain_text(f"Answered by Priya: Yes, {word} combs are $9.")

        # Bob's token revoked: the console is back at the sign-in box, signed in as nobody.
        assert supervisors_command(server.env["DATABASE_URL"], "revoke", "Bob").returncode == 0
        page.reload()
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("alert")).to_contain_text("not accepted")
        expect(page.locator("#me")).to_have_text("")
    finally:
        server.stop()


def test_with_auth_off_the_console_says_this_machine_only(page: Page, server: ServerProcess) -> None:
    open_console(page, server.base)
    expect(page.locator("#me")).to_have_text("Auth is off: this machine only")
