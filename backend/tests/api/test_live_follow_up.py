"""A caller still on the line hears the answer from the agent; anyone else gets the text. Never both, never none."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from app.services.requests import follow_up
from tests.support import WebhookReceiver, eventually, make_settings, request_body, running_app


async def _open(client: httpx.AsyncClient, **overrides: str) -> str:
    r = await client.post("/api/help-requests", json=request_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _answer(client: httpx.AsyncClient, rid: str, answer: str = "Yes, on Sundays from 10 to 4.") -> None:
    r = await client.post(f"/api/help-requests/{rid}/response", json={"answer": answer})
    assert r.status_code == 200, r.text


async def _customer_statuses(client: httpx.AsyncClient, rid: str) -> set[str]:
    rows = (await client.get("/api/notifications")).json()
    return {d["status"] for d in rows if d["request_id"] == rid and d["recipient"] == "customer"}


async def _answered_on_the_line(client: httpx.AsyncClient) -> str:
    rid = await _open(client)
    await client.post(f"/api/help-requests/{rid}/presence", json={"on_line": True})
    await _answer(client, rid)
    return rid


def _texted(webhook: WebhookReceiver, rid: str) -> list:
    return [d for d in webhook.accepted("help_request.resolved") if d.body["request"]["id"] == rid]


async def _all_delivered(client: httpx.AsyncClient, rid: str) -> bool:
    return await _customer_statuses(client, rid) == {"delivered"}


async def _sent_marker(client: httpx.AsyncClient, webhook: WebhookReceiver) -> None:
    """Deliveries go out in due order: once a later event has arrived, anything due before it has too."""
    marker = await _open(client, question="Is there a marker question?")
    await eventually(lambda: any(d.body["request"]["id"] == marker for d in webhook.accepted("help_request.created")))


@pytest.fixture
async def webhook_client(database_url: str, webhook: WebhookReceiver):
    async with running_app(make_settings(database_url, notify_webhook_url=webhook.url)) as c:
        yield c


async def test_caller_on_the_line_is_told_in_the_call_and_not_texted(
    webhook_client: httpx.AsyncClient, webhook: WebhookReceiver
) -> None:
    rid = await _open(webhook_client)
    on = await webhook_client.post(f"/api/help-requests/{rid}/presence", json={"on_line": True})
    assert on.status_code == 200 and on.json()["caller_on_line_until"] is not None
    await _answer(webhook_client, rid)

    taken = await webhook_client.post(f"/api/help-requests/{rid}/follow-up")
    assert taken.status_code == 200, taken.text
    assert any("Told the caller on the line" in h["message"] for h in taken.json()["history"])
    assert await _customer_statuses(webhook_client, rid) == {"said_in_call"}

    await webhook_client.post(f"/api/help-requests/{rid}/presence", json={"on_line": False})
    await _sent_marker(webhook_client, webhook)
    assert not _texted(webhook, rid)
    # A retried take (the first reply lost on the way) is the same take, not a "texted" 409.
    again = await webhook_client.post(f"/api/help-requests/{rid}/follow-up")
    assert again.status_code == 200
    assert sum("Told the caller on the line" in h["message"] for h in again.json()["history"]) == 1


async def test_caller_who_hangs_up_before_hearing_it_gets_the_text(
    webhook_client: httpx.AsyncClient, webhook: WebhookReceiver
) -> None:
    rid = await _answered_on_the_line(webhook_client)
    await webhook_client.post(f"/api/help-requests/{rid}/presence", json={"on_line": False})

    # Whether or not the deliverer has sent it yet, a take after the hang-up must not cancel the text.
    taken = await webhook_client.post(f"/api/help-requests/{rid}/follow-up")
    assert taken.status_code == 409, taken.text
    assert "no longer on the line" in taken.json()["detail"] or "already gone" in taken.json()["detail"]
    await eventually(lambda: _texted(webhook, rid))
    history = (await webhook_client.get(f"/api/help-requests/{rid}")).json()["history"]
    assert any("hung up" in h["message"] for h in history)


async def test_agent_that_vanishes_mid_call_lets_the_text_go(
    database_url: str, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow_up, "PRESENCE_LEASE", timedelta(seconds=1))
    async with running_app(make_settings(database_url, notify_webhook_url=webhook.url)) as client:
        rid = await _answered_on_the_line(client)
        # No renewal and no hang-up: the lease lapses and the deliverer sends the held text.
        await eventually(lambda: _texted(webhook, rid), timeout=10)
        assert (await client.post(f"/api/help-requests/{rid}/follow-up")).status_code == 409


async def test_without_a_caller_on_the_line_the_text_goes_at_once(
    webhook_client: httpx.AsyncClient, webhook: WebhookReceiver
) -> None:
    rid = await _open(webhook_client)
    await _answer(webhook_client, rid)
    await eventually(lambda: _texted(webhook, rid))
    assert (await webhook_client.post(f"/api/help-requests/{rid}/follow-up")).status_code == 409


async def test_timeout_while_on_the_line_is_also_said_in_the_call(webhook_client: httpx.AsyncClient) -> None:
    rid = await _open(webhook_client)
    await webhook_client.post(f"/api/help-requests/{rid}/presence", json={"on_line": True})
    assert (await webhook_client.post(f"/api/help-requests/{rid}/timeout")).status_code == 200
    taken = await webhook_client.post(f"/api/help-requests/{rid}/follow-up")
    assert taken.status_code == 200 and taken.json()["status"] == "unresolved"


async def test_follow_up_before_any_answer_is_a_conflict(client: httpx.AsyncClient) -> None:
    rid = await _open(client)
    r = await client.post(f"/api/help-requests/{rid}/follow-up")
    assert r.status_code == 409 and "no answer yet" in r.json()["detail"]
    assert (await client.post("/api/help-requests/nope/follow-up")).status_code == 404
    assert (await client.post("/api/help-requests/nope/presence", json={"on_line": True})).status_code == 404
    assert (await client.post(f"/api/help-requests/{rid}/presence", json={"on_line": "maybe"})).status_code == 422


async def test_agent_adds_contact_while_pending_and_not_after(client: httpx.AsyncClient) -> None:
    rid = (await client.post("/api/help-requests", json=request_body(customer_contact="", caller_on_line=True))).json()[
        "id"
    ]
    r = await client.patch(
        f"/api/help-requests/{rid}",
        json={"customer_contact": "+14155550123", "transcript": [{"role": "caller", "text": "It's 415 555 0123"}]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer_contact"] == "+14155550123"
    assert body["transcript"] == [{"role": "caller", "text": "It's 415 555 0123"}]
    assert any("Caller gave a contact: +14155550123" in h["message"] for h in body["history"])

    await _answer(client, rid)
    late = await client.patch(f"/api/help-requests/{rid}", json={"customer_contact": "+14155550999"})
    assert late.status_code == 409
    # The transcript of the rest of the call is still welcome while the call lasts, and not after.
    assert (await client.patch(f"/api/help-requests/{rid}", json={"transcript": []})).status_code == 200
    await client.post(f"/api/help-requests/{rid}/presence", json={"on_line": False})
    assert (await client.patch(f"/api/help-requests/{rid}", json={"transcript": []})).status_code == 409
    assert (await client.patch(f"/api/help-requests/{rid}", json={"customer_contact": ""})).status_code == 422
    assert (await client.patch(f"/api/help-requests/{rid}", json={"status": "resolved"})).status_code == 422


async def test_a_take_the_caller_did_not_hear_is_given_back_as_a_text(
    webhook_client: httpx.AsyncClient, webhook: WebhookReceiver
) -> None:
    rid = await _answered_on_the_line(webhook_client)
    assert (await webhook_client.post(f"/api/help-requests/{rid}/follow-up")).status_code == 200
    back = await webhook_client.delete(f"/api/help-requests/{rid}/follow-up")
    assert back.status_code == 200
    assert any("did not hear the whole answer" in h["message"] for h in back.json()["history"])
    await eventually(lambda: _texted(webhook, rid))
    # Giving back twice sends nothing twice.
    assert (await webhook_client.delete(f"/api/help-requests/{rid}/follow-up")).status_code == 200
    await eventually(lambda: _all_delivered(webhook_client, rid))
    await _sent_marker(webhook_client, webhook)
    assert len(_texted(webhook, rid)) == 1


async def test_ids_with_nul_are_unknown_not_errors(webhook_client: httpx.AsyncClient) -> None:
    for method, path in (
        ("PATCH", "/api/help-requests/a%00b"),
        ("POST", "/api/help-requests/a%00b/follow-up"),
        ("DELETE", "/api/help-requests/a%00b/follow-up"),
        ("GET", "/api/help-requests/a%00b"),
        ("GET", "/api/knowledge-base/a%00b"),
        ("POST", "/api/knowledge-base/a%00b/uses"),
    ):
        body = {"customer_contact": "+1415"} if method == "PATCH" else None
        r = await webhook_client.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    r = await webhook_client.post("/api/help-requests/a%00b/presence", json={"on_line": True})
    assert r.status_code == 404


async def test_a_request_opened_during_the_call_holds_its_text_from_the_start(
    webhook_client: httpx.AsyncClient, webhook: WebhookReceiver
) -> None:
    # Answered before the agent's first presence renewal: still held, still the agent's to say.
    r = await webhook_client.post("/api/help-requests", json=request_body(caller_on_line=True))
    rid = r.json()["id"]
    assert r.json()["caller_on_line_until"] is not None
    await _answer(webhook_client, rid)
    assert (await webhook_client.post(f"/api/help-requests/{rid}/follow-up")).status_code == 200
    assert await _customer_statuses(webhook_client, rid) == {"said_in_call"}
