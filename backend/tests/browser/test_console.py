"""The supervisor console end to end: live updates, answering, races, hostile text, sign-in, undo."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Api, open_console
from tests.server_process import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _word() -> str:
    return "Zq" + uuid.uuid4().hex[:6]


def _card(page: Page, text: str):
    return page.locator("#pending-list .card", has_text=text)


def test_new_request_appears_live_without_reload_or_polling(page: Page, api: Api, server: ServerProcess) -> None:
    open_console(page, server.base)
    list_calls: list[str] = []
    page.on("request", lambda r: list_calls.append(r.url) if "/api/help-requests?" in r.url else None)

    word = _word()
    api.ask(
        f"Do you do {word} perms?",
        name="Robin",
        customer_contact="+14155550111",
        transcript=[{"role": "caller", "text": f"Hi, do you do {word} perms?"}],
    )

    card = _card(page, word)
    expect(card).to_be_visible()
    expect(card.locator(".who")).to_have_text("Robin")
    expect(card.locator(".contact")).to_contain_text("+14155550111")
    expect(card.locator(".left")).to_contain_text("left before it times out")
    expect(page.locator("#alert")).to_contain_text(f"New question from Robin: Do you do {word} perms?")
    card.locator(".transcript summary").click()
    expect(card.locator(".lines")).to_contain_text(f"caller: Hi, do you do {word} perms?")
    # Pushed, not polled: the page fetched that one request, never the list again.
    assert list_calls == []


def test_answering_in_the_page_moves_it_to_history_and_learns_it(page: Page, api: Api, server: ServerProcess) -> None:
    word = _word()
    question = f"Can I book a {word} treatment?"
    api.ask(question)
    open_console(page, server.base)

    card = _card(page, word)
    box = card.get_by_label("Answer", exact=True)
    box.fill(f"Yes, {word} treatments are $70.")
    box.press("Control+Enter")
    expect(card).to_have_count(0)

    page.get_by_role("button", name="History").click()
    row = page.locator("#history-list .row", has_text=word)
    expect(row.locator(".status")).to_have_text("answered")
    row.locator("summary").first.click()
    expect(row.locator(".timeline")).to_contain_text("Answered by admin")
    expect(row.locator(".timeline")).to_contain_text("Saved to the knowledge base")

    page.get_by_role("button", name="Learned answers").click()
    page.get_by_label("Search answers").fill(word)
    entry = page.locator("#kb-list .kb", has_text=word)
    expect(entry.locator(".q")).to_have_text(question)
    expect(entry.locator(".a")).to_have_text(f"Yes, {word} treatments are $70.")
    expect(entry.locator(".meta")).to_contain_text("learned from a caller's question")


def test_someone_else_answering_first_shows_who_and_what(page: Page, api: Api, server: ServerProcess) -> None:
    word = _word()
    req = api.ask(f"Do you have {word} shampoo?")

    def no_live_updates(route: Route) -> None:
        route.abort()

    # Without the event stream the page cannot know another supervisor got there first.
    page.route("**/api/events", no_live_updates)
    page.goto(server.base + "/")
    card = _card(page, word)
    expect(card).to_be_visible()

    assert api.answer(req["id"], f"No, we don't stock {word}.", answered_by="Priya").status_code == 200
    card.get_by_label("Answer", exact=True).fill("Yes we do")
    card.get_by_role("button", name="Send answer").click()
    expect(card.locator(".outcome")).to_contain_text(f"Already answered by Priya: “No, we don't stock {word}.”")
    expect(page.get_by_text("Traceback")).to_have_count(0)
    card.get_by_role("button", name="Dismiss").click()
    expect(card).to_have_count(0)


def test_an_answer_being_typed_survives_someone_else_answering(page: Page, api: Api, server: ServerProcess) -> None:
    word = _word()
    req = api.ask(f"Do you do {word} extensions?")
    open_console(page, server.base)
    card = _card(page, word)
    card.get_by_label("Answer", exact=True).fill("Yes, we do — let me")
    assert api.answer(req["id"], "No, sorry.", answered_by="Priya").status_code == 200
    expect(card.locator(".outcome")).to_contain_text("Already answered by Priya: “No, sorry.”")
    expect(card.get_by_label("Answer", exact=True)).to_have_value("Yes, we do — let me")


def test_callers_html_is_shown_as_text_and_runs_nothing(page: Page, api: Api, server: ServerProcess) -> None:
    word = _word()
    evil = f'<img src=x onerror="window.pwned=1;document.body.dataset.pwned=1">{word} <b>later</b>?'
    api.ask(
        evil,
        name="<script>window.pwned=2</script>Eve",
        transcript=[{"role": "caller", "text": '<svg onload="window.pwned=3"></svg>'}],
    )
    open_console(page, server.base)

    card = _card(page, word)
    expect(card.locator(".question")).to_have_text(evil)
    expect(card.locator(".who")).to_have_text("<script>window.pwned=2</script>Eve")
    card.locator(".transcript summary").click()
    expect(card.locator(".lines")).to_contain_text('<svg onload="window.pwned=3"></svg>')
    assert card.locator("img, b, script, svg").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.body.dataset.pwned") is None


def test_keyboard_moves_between_questions(page: Page, api: Api, server: ServerProcess) -> None:
    first, second = _word(), _word()
    api.ask(f"Is {first} parking free?")
    api.ask(f"Is {second} parking free?")
    open_console(page, server.base)
    expect(_card(page, second)).to_be_visible()

    page.locator("body").press("Escape")
    page.keyboard.press("j")
    focused = page.evaluate("document.activeElement.closest('.card')?.innerText || ''")
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    after = page.evaluate("document.activeElement.closest('.card')?.innerText || ''")
    assert focused and after and focused != after
    page.keyboard.press("Alt+ArrowUp")
    assert page.evaluate("document.activeElement.closest('.card')?.innerText || ''") == focused


def test_page_reconnects_after_a_server_restart(page: Page, tmp_path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        open_console(page, server.base)
        server.stop()
        expect(page.locator("#live")).to_have_text("reconnecting…")
        server.start()
        expect(page.locator("#live.on")).to_be_visible(timeout=20_000)
        word = _word()
        Api(server.base).ask(f"Do you sell {word} gift cards?")
        expect(_card(page, word)).to_be_visible()
    finally:
        server.stop()


def test_sign_in_flow_with_a_supervisor_token(page: Page, tmp_path) -> None:
    server = ServerProcess(tmp_path, SUPERVISOR_TOKEN="s3cret-token").start()
    try:
        word = _word()
        Api(server.base, token="s3cret-token").ask(f"Do you do {word} blowouts?")
        page.goto(server.base + "/")
        dialog = page.get_by_role("dialog", name="Sign in")
        expect(dialog).to_be_visible()

        dialog.get_by_label("Supervisor token").fill("wrong")
        dialog.get_by_role("button", name="Sign in").click()
        expect(dialog.get_by_role("alert")).to_contain_text("not accepted")

        dialog.get_by_label("Supervisor token").fill("s3cret-token")
        dialog.get_by_role("button", name="Sign in").click()
        expect(_card(page, word)).to_be_visible()
        expect(dialog).to_be_hidden()

        page.reload()  # kept for the session
        expect(_card(page, word)).to_be_visible()
        expect(dialog).to_be_hidden()

        # A token that stops working (rotated, say) sends the user back to the prompt.
        page.evaluate("sessionStorage.setItem('frontdesk.supervisorToken', 'rotated')")
        page.reload()
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("alert")).to_contain_text("not accepted")
    finally:
        server.stop()


def test_learned_answers_can_be_edited_and_retired(page: Page, api: Api, server: ServerProcess) -> None:
    word = _word()
    entry = api.http.post(
        "/api/knowledge-base", json={"question": f"Do you sell {word} wax?", "answer": "Yes, $12."}
    ).json()
    api.http.post(f"/api/knowledge-base/{entry['id']}/uses")
    open_console(page, server.base)
    page.get_by_role("button", name="Learned answers").click()
    page.get_by_label("Search answers").fill(word)
    row = page.locator("#kb-list .kb", has_text=word)
    expect(row.locator(".meta")).to_contain_text("used once")

    row.get_by_role("button", name="Edit").click()
    row.get_by_label("Answer", exact=True).fill("Yes, $14 since March.")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".a")).to_have_text("Yes, $14 since March.")
    assert api.http.get(f"/api/knowledge-base/{entry['id']}").json()["answer"] == "Yes, $14 since March."

    row.get_by_role("button", name="Retire").click()
    row.get_by_role("button", name="Retire: are you sure?").click()
    expect(row).to_have_count(0)
    assert api.http.get(f"/api/knowledge-base/{entry['id']}").json()["retired_at"] is not None


def test_pending_shows_why_it_escalated_and_answers_with_an_entry(page: Page, api: Api, server: ServerProcess) -> None:
    word = _word()
    entry = api.http.post(
        "/api/knowledge-base",
        json={"question": f"How much is the {word} glaze?", "answer": f"The {word} glaze is $38."},
    ).json()
    wording = f"is the {word} thing still on offer for my sister"
    req = api.ask(wording)
    open_console(page, server.base)
    card = _card(page, wording)
    nearest = card.locator(".nearest")
    nearest.locator("summary").click()
    near = nearest.locator(".near", has_text=f"How much is the {word} glaze?")
    expect(near.locator(".near-a")).to_have_text(f"The {word} glaze is $38.")
    expect(near.locator(".near-why")).to_contain_text("Not said:")
    expect(nearest.locator(".reason")).not_to_be_empty()

    near.get_by_role("button", name=f"Send the learned answer to: How much is the {word} glaze?").click()
    expect(card).to_have_count(0)
    done = api.http.get(f"/api/help-requests/{req['id']}").json()
    assert (done["status"], done["answer"]) == ("resolved", f"The {word} glaze is $38.")
    learned = api.http.get(f"/api/knowledge-base/{entry['id']}").json()
    assert [p["text"] for p in learned["phrasings"]] == [wording]
    assert api.http.get("/api/knowledge-base/search", params={"q": wording}).json()["match"]["id"] == entry["id"]

    page.get_by_role("button", name="Learned answers").click()
    page.get_by_label("Search answers").fill(word)
    row = page.locator("#kb-list .kb", has_text=word)
    expect(row.locator(".phrasing-list")).to_contain_text(wording)
    row.get_by_role("button", name=f"Remove the phrasing: {wording}").click()
    expect(row.locator(".phrasings")).to_be_hidden()
    assert api.http.get(f"/api/knowledge-base/{entry['id']}").json()["phrasings"] == []


def test_a_new_answer_can_be_added_by_hand(page: Page, api: Api, server: ServerProcess) -> None:
    word = _word()
    open_console(page, server.base)
    page.get_by_role("button", name="Learned answers").click()
    page.get_by_role("button", name="New answer").click()
    form = page.locator("#kb-new-form")
    form.get_by_label("Question, as a caller would ask it").fill(f"Do you stock {word} shampoo?")
    form.get_by_label("Answer the agent will say").fill("Yes, $22 a bottle.")
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden()
    page.get_by_label("Search answers").fill(word)
    expect(page.locator("#kb-list .kb", has_text=word).locator(".a")).to_have_text("Yes, $22 a bottle.")
    entries = [e for e in api.http.get("/api/knowledge-base").json() if word in e["question"]]
    assert [(e["answer"], e["source_request_id"]) for e in entries] == [("Yes, $22 a bottle.", None)]


def test_the_page_declares_its_icon_so_loading_it_meets_no_404(page: Page, tmp_path) -> None:
    # A server of its own, so its log holds this page's requests only, and a new origin, whose icon
    # the browser has not asked for yet.
    server = ServerProcess(tmp_path).start()
    try:
        open_console(page, server.base)
        # A page that declares no icon makes the browser ask for /favicon.ico: once that shows in the
        # log, whatever loading the console asked for is there before it.
        page.goto(server.base + "/health?after-the-console")
        deadline = time.monotonic() + 10
        while "/favicon.ico" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        console_part, marker, after = server.log.read_text().partition("GET /health?after-the-console")
        assert "GET / " in console_part
        assert [line for line in console_part.splitlines() if '" 404' in line] == []
        assert marker and "GET /favicon.ico" in after  # the browser did ask this origin for its icon
    finally:
        server.stop()


def test_signed_out_the_views_say_to_sign_in_not_that_nothing_waits(page: Page, tmp_path) -> None:
    server = ServerProcess(tmp_path, SUPERVISOR_TOKEN="s3cret-token").start()
    try:
        word = _word()
        Api(server.base, token="s3cret-token").ask(f"Do you do {word} braids?")
        page.goto(server.base + "/")
        dialog = page.get_by_role("dialog", name="Sign in")
        expect(dialog).to_be_visible()
        for view in ("pending", "history", "learned", "overview"):
            page.goto(f"{server.base}/#/{view}")
            expect(page.locator(f"#view-{view}")).to_be_visible()
            expect(page.locator("#gate")).to_have_text("Sign in to see the requests: callers may be waiting.")
            shown = page.locator("main").inner_text()
            for claim in ("No caller is waiting", "No requests match", "No answers match", "Waiting now"):
                assert claim not in shown, f"{view} says {claim!r} before sign-in"
            expect(page.locator("#pending-count")).to_be_hidden()

        page.goto(f"{server.base}/#/pending")
        dialog.get_by_label("Supervisor token").fill("s3cret-token")
        dialog.get_by_role("button", name="Sign in").click()
        expect(_card(page, word)).to_be_visible()
        expect(page.locator("#gate")).to_be_hidden()
        expect(page.locator("#pending-count")).to_have_text("1")
    finally:
        server.stop()


def _posts(page: Page) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    return sent


def test_cant_answer_asks_first_and_undo_means_the_server_never_hears(
    page: Page, api: Api, server: ServerProcess
) -> None:
    word = _word()
    req = api.ask(f"Can I pay in {word} coins?")
    sent = _posts(page)
    open_console(page, server.base, "/?undo=1.5")
    card = _card(page, word)

    card.get_by_role("button", name="Can't answer").click()
    confirm = card.get_by_role("button", name="Confirm: close it and tell the caller")
    expect(confirm).to_be_visible()
    assert sent == []
    confirm.click()
    toast = page.locator("#toasts .toast", has_text=word)
    expect(toast).to_contain_text("the caller will be told no answer was found")
    toast.get_by_role("button", name="Undo").click()
    expect(toast).to_have_count(0)

    page.wait_for_timeout(2_500)  # well past the 1.5 s window
    assert sent == []
    assert api.http.get(f"/api/help-requests/{req['id']}").json()["status"] == "pending"
    expect(card.get_by_role("button", name="Can't answer")).to_be_enabled()
    expect(card.get_by_label("Answer", exact=True)).to_be_focused()
    expect(card.locator(".outcome")).to_be_hidden()


def test_cant_answer_reaches_the_server_only_when_the_undo_window_ends(
    page: Page, api: Api, server: ServerProcess
) -> None:
    word = _word()
    req = api.ask(f"Do you take {word} vouchers?")
    sent = _posts(page)
    open_console(page, server.base, "/?undo=1")
    card = _card(page, word)

    card.get_by_role("button", name="Can't answer").click()
    card.get_by_role("button", name="Confirm: close it and tell the caller").click()
    toast = page.locator("#toasts .toast", has_text=word)
    expect(toast.get_by_role("button", name="Undo")).to_be_visible()
    assert sent == []
    assert api.http.get(f"/api/help-requests/{req['id']}").json()["status"] == "pending"

    expect(card).to_have_count(0)
    expect(toast).to_have_count(0)
    assert sent == [f"{server.base}/api/help-requests/{req['id']}/response"]
    assert api.http.get(f"/api/help-requests/{req['id']}").json()["status"] == "unresolved"
