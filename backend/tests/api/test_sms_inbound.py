"""Texts from callers: Twilio's signed webhook, replies joining the caller's request, new questions
going through the knowledge base first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator

import httpx
import pytest

from tests.support import eventually, make_settings, request_body, running_app
from tests.twilio_stand_in import ACCOUNT_SID, SALON_NUMBER, TwilioStandIn, signed_form, sms_settings, text_in

CALLER = "+14155550101"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
async def sms_client(sqlite_url: str, twilio: TwilioStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(sms_settings(sqlite_url, twilio)) as client:
        yield client


async def detail(client: httpx.AsyncClient, rid: str) -> dict:
    return (await client.get(f"/api/help-requests/{rid}")).json()


def messages(req: dict) -> list[str]:
    return [h["message"] for h in req["history"]]


FORM = {"MessageSid": "SM" + "1" * 32, "AccountSid": ACCOUNT_SID, "From": CALLER, "To": SALON_NUMBER, "Body": "hi"}


async def test_only_texts_signed_by_twilio_for_this_url_are_taken(sqlite_url: str, twilio: TwilioStandIn) -> None:
    public = "https://frontdesk.example.com"
    settings = sms_settings(sqlite_url, twilio, public_base_url=public)
    async with running_app(settings) as client:

        async def post(signature: str | None) -> httpx.Response:
            headers = {} if signature is None else {"X-Twilio-Signature": signature}
            return await client.post("/api/sms/inbound", data=FORM, headers=headers)

        refused = [
            await post(None),
            await post(signed_form(f"{public}/api/sms/inbound", FORM, auth_token="another-account-token")),
            # What the app sees behind the proxy is not what Twilio signed.
            await post(signed_form("http://127.0.0.1/api/sms/inbound", FORM)),
            await post(signed_form(f"{public}/api/sms/inbound", {**FORM, "Body": "something else"})),
        ]
        assert [r.status_code for r in refused] == [403, 403, 403, 403]
        assert refused[0].json()["detail"] == "missing or invalid X-Twilio-Signature"

        taken = await post(signed_form(f"{public}/api/sms/inbound", FORM))
        assert taken.status_code == 200
        assert taken.text == EMPTY_TWIML and taken.headers["content-type"].startswith("application/xml")

        no_sender = {k: v for k, v in FORM.items() if k != "From"}
        signature = signed_form(f"{public}/api/sms/inbound", no_sender)
        response = await client.post("/api/sms/inbound", data=no_sender, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 422


async def test_without_sms_settings_the_webhook_refuses_everything(client: httpx.AsyncClient) -> None:
    response = await text_in(client, sender=CALLER, body="hi")
    assert response.status_code == 403


async def test_no_bearer_token_is_needed_when_auth_is_on(sqlite_url: str, twilio: TwilioStandIn) -> None:
    settings = sms_settings(sqlite_url, twilio, supervisor_token="sup-token")
    async with running_app(settings) as client:
        assert (await client.get("/api/help-requests")).status_code == 401
        assert (await text_in(client, sender=CALLER, body="hi")).status_code == 200


async def test_a_reply_joins_the_callers_pending_request_once(database_url: str, twilio: TwilioStandIn) -> None:
    async with running_app(sms_settings(database_url, twilio)) as sms_client:
        await _reply_joins_the_pending_request(sms_client)


async def _reply_joins_the_pending_request(sms_client: httpx.AsyncClient) -> None:
    req = (await sms_client.post("/api/help-requests", json=request_body(customer_contact="(415) 555-0101"))).json()
    other = (
        await sms_client.post(
            "/api/help-requests", json=request_body(question="Is there parking?", customer_contact="+14155550199")
        )
    ).json()
    for _ in range(2):  # Twilio may deliver a webhook twice: one message SID, one line
        response = await text_in(sms_client, sender=CALLER, body="Also, how long does it take?", message_sid="SM1")
        assert response.status_code == 200 and response.text == EMPTY_TWIML

    mine = await detail(sms_client, req["id"])
    assert mine["transcript"][-1] == {"role": "caller", "text": "Also, how long does it take?"}
    assert messages(mine).count("Caller texted: Also, how long does it take?") == 1
    assert mine["status"] == "pending"
    assert (await detail(sms_client, other["id"]))["transcript"] == []
    assert len((await sms_client.get("/api/help-requests")).json()) == 2, "a reply opens no request"


async def test_a_new_question_the_kb_knows_is_answered_by_text_at_once(
    sms_client: httpx.AsyncClient, twilio: TwilioStandIn
) -> None:
    entry = (
        await sms_client.post(
            "/api/knowledge-base",
            json={"question": "Do you have parking?", "answer": "Yes, free parking behind the salon."},
        )
    ).json()
    assert (await text_in(sms_client, sender="415.555.0177", body="Do you have parking?")).status_code == 200

    [req] = (await sms_client.get("/api/help-requests")).json()
    assert req["status"] == "resolved" and req["channel"] == "sms" and req["answered_by"] == "knowledge base"
    assert req["customer_contact"] == "+14155550177" and req["answer"] == "Yes, free parking behind the salon."
    assert f"Answered from the knowledge base (entry {entry['id']}): Yes, free parking behind the salon." in messages(
        req
    )
    [answer] = await eventually(lambda: twilio.sent(), timeout=5)
    assert answer.to == "+14155550177"
    assert (
        answer.body
        == 'Hi, it\'s Maple & Shear Salon. About "Do you have parking?": Yes, free parking behind the salon.'
    )

    types = {r["type"] for r in (await sms_client.get("/api/notifications")).json() if r["request_id"] == req["id"]}
    assert types == {"help_request.resolved"}, "no supervisor is asked, and nobody is told to wait"
    assert (await sms_client.get(f"/api/knowledge-base/{entry['id']}")).json()["times_used"] == 1
    [today] = (await sms_client.get("/api/stats/daily", params={"days": 1})).json()
    assert (today["kb_answers"], today["escalations"]) == (1, 0)


async def test_a_new_question_the_kb_does_not_know_goes_to_the_team_and_is_acknowledged(
    sms_client: httpx.AsyncClient, twilio: TwilioStandIn
) -> None:
    await text_in(sms_client, sender=CALLER, body="Do you sell gift cards?")
    [req] = (await sms_client.get("/api/help-requests")).json()
    assert req["status"] == "pending" and req["channel"] == "sms" and req["customer_contact"] == CALLER
    assert req["question"] == "Do you sell gift cards?"
    assert req["transcript"] == [{"role": "caller", "text": "Do you sell gift cards?"}]
    [ack] = await eventually(lambda: twilio.sent(), timeout=5)
    assert ack.to == CALLER and ack.body.startswith("Hi, it's Maple & Shear Salon. We're checking with the team")
    assert "Phone caller" not in ack.body
    types = {r["type"] for r in (await sms_client.get("/api/notifications")).json()}
    assert {"help_request.created", "help_request.acknowledged"} <= types


async def test_after_an_answer_thanks_joins_it_and_a_new_question_opens_another(
    sms_client: httpx.AsyncClient,
) -> None:
    req = (await sms_client.post("/api/help-requests", json=request_body(customer_name="Ana"))).json()
    await sms_client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes, from $220."})

    await text_in(sms_client, sender=CALLER, body="Thanks so much!")
    assert "Caller texted: Thanks so much!" in messages(await detail(sms_client, req["id"]))
    assert len((await sms_client.get("/api/help-requests")).json()) == 1

    await text_in(sms_client, sender=CALLER, body="Do you sell gift cards?")
    newest = (await sms_client.get("/api/help-requests")).json()[0]
    assert newest["id"] != req["id"] and newest["status"] == "pending"
    assert newest["customer_name"] == "Ana", "the caller's name is known from their last request"


async def test_courtesy_from_a_number_with_no_recent_request_opens_nothing(sms_client: httpx.AsyncClient) -> None:
    assert (await text_in(sms_client, sender=CALLER, body="hi")).status_code == 200
    assert (await sms_client.get("/api/help-requests")).json() == []


async def test_yes_from_a_number_that_never_said_stop_is_an_ordinary_reply(
    sms_client: httpx.AsyncClient, twilio: TwilioStandIn
) -> None:
    req = (await sms_client.post("/api/help-requests", json=request_body())).json()
    await text_in(sms_client, sender=CALLER, body="Yes")
    assert "Caller texted: Yes" in messages(await detail(sms_client, req["id"]))


async def test_a_stop_is_kept_across_a_restart(sqlite_url: str, twilio: TwilioStandIn) -> None:
    async with running_app(sms_settings(sqlite_url, twilio)) as client:
        await text_in(client, sender=CALLER, body="UNSUBSCRIBE")
    async with running_app(sms_settings(sqlite_url, twilio)) as client:
        req = (await client.post("/api/help-requests", json=request_body())).json()
        assert "No SMS: +14155550101 texted STOP; texts resume if they text START" in messages(req)
    assert twilio.posts == []


def test_half_a_twilio_set_up_is_refused_at_start(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="SMS needs"):
        make_settings(sqlite_url, twilio_account_sid=ACCOUNT_SID, twilio_auth_token="token")


async def test_a_text_with_a_nul_character_lands_without_it(database_url: str, twilio: TwilioStandIn) -> None:
    """PostgreSQL stores no NUL: the text must land anyway, not fail at every redelivery."""
    async with running_app(sms_settings(database_url, twilio)) as sms_client:
        req = (await sms_client.post("/api/help-requests", json=request_body(customer_contact=CALLER))).json()
        response = await text_in(sms_client, sender=CALLER, body="Also\x00 parking?")
        assert response.status_code == 200
        mine = await detail(sms_client, req["id"])
        assert mine["transcript"][-1] == {"role": "caller", "text": "Also parking?"}


async def test_a_text_that_fails_while_it_opens_a_request_opens_exactly_one_when_redelivered(
    sms_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The text's log line and the request it opens are one write: a failure between them (the
    process dying there) leaves neither, and Twilio's redelivery opens the request once, the text
    not added to it a second time as the caller's reply."""
    from app.services.sms.inbound import SmsInbox

    log = SmsInbox._log
    calls = []

    def dies_the_first_time(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("the process dies here")
        return log(self, *args, **kwargs)

    monkeypatch.setattr(SmsInbox, "_log", dies_the_first_time)

    def deliver() -> Awaitable[httpx.Response]:
        return text_in(sms_client, sender=CALLER, body="Do you sell gift cards?", message_sid="SM" + "7" * 32)

    with pytest.raises(RuntimeError):
        await deliver()
    assert [(await deliver()).status_code, (await deliver()).status_code] == [200, 200]
    [req] = (await sms_client.get("/api/help-requests")).json()
    assert req["question"] == "Do you sell gift cards?" and req["channel"] == "sms"
    assert not [m for m in messages(await detail(sms_client, req["id"])) if m.startswith("Caller texted")]


async def test_the_same_new_question_delivered_twice_at_once_opens_one_request(
    database_url: str, twilio: TwilioStandIn
) -> None:
    async with running_app(sms_settings(database_url, twilio)) as client:
        sid = "SM" + "8" * 32
        both = await asyncio.gather(
            *(text_in(client, sender=CALLER, body="Do you sell gift cards?", message_sid=sid) for _ in range(2))
        )
        assert [r.status_code for r in both] == [200, 200]
        [req] = (await client.get("/api/help-requests")).json()
        assert not [m for m in messages(await detail(client, req["id"])) if m.startswith("Caller texted")]
