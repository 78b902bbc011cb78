"""Texts to callers: the acknowledgement on escalation and the follow-up, through the outbox to a
stand-in for Twilio's REST API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import eventually, request_body, running_app
from tests.twilio_stand_in import SALON_NUMBER, TwilioStandIn, sms_settings, text_in

CALLER = "+14155550101"


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn()
    yield stand_in
    stand_in.close()


async def history(client: httpx.AsyncClient, rid: str) -> list[str]:
    return [h["message"] for h in (await client.get(f"/api/help-requests/{rid}")).json()["history"]]


async def sms_rows(client: httpx.AsyncClient, rid: str) -> list[dict]:
    rows = (await client.get("/api/notifications", params={"limit": 500})).json()
    return [r for r in rows if r["request_id"] == rid and r["sink"] == "sms"]


async def test_an_escalation_texts_one_acknowledgement_and_the_answer_to_the_e164_number(
    database_url: str, twilio: TwilioStandIn
) -> None:
    async with running_app(sms_settings(database_url, twilio)) as client:
        req = (await client.post("/api/help-requests", json=request_body(customer_contact="(415) 555-0101"))).json()
        [ack] = await eventually(lambda: twilio.sent(), timeout=5)
        assert ack.to == CALLER and ack.sender == SALON_NUMBER and ack.authorized
        assert ack.body.startswith("Hi Ana, it's Maple & Shear Salon. We're checking with the team about")
        assert '"Do you do balayage?"' in ack.body and "usually within 15 minutes" in ack.body

        await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes! Balayage is $220."})
        [_, answer] = await eventually(lambda: len(twilio.sent()) == 2 and twilio.sent(), timeout=5)
        assert answer.to == CALLER
        assert answer.body == 'Hi Ana, it\'s Maple & Shear Salon. About "Do you do balayage?": Yes! Balayage is $220.'

        rows = await eventually(lambda: _all_delivered(client, req["id"]))
        assert {r["type"] for r in rows} == {"help_request.acknowledged", "help_request.resolved"}
        # The supervisors' event goes to supervisors' channels, never to the caller's phone.
        assert "help_request.created" not in {r["type"] for r in rows}
        assert {post.token for post in twilio.posts} == {f"{r['event_id']}:sms" for r in rows}
        lines = await history(client, req["id"])
        assert "Customer told the team is checking via sms" in lines
        assert "Follow-up with the answer sent to the customer via sms" in lines
    assert len(twilio.posts) == 2


async def _all_delivered(client: httpx.AsyncClient, rid: str) -> list[dict]:
    rows = await sms_rows(client, rid)
    return rows if len(rows) == 2 and all(r["status"] == "delivered" for r in rows) else []


async def test_a_refused_text_is_retried_with_the_same_idempotency_token(sqlite_url: str) -> None:
    twilio = TwilioStandIn(refuse=lambda post, seen: 500 if not any(s.token == post.token for s in seen) else None)
    try:
        async with running_app(sms_settings(sqlite_url, twilio)) as client:
            req = (await client.post("/api/help-requests", json=request_body())).json()
            [ack] = await eventually(lambda: twilio.sent(), timeout=6)
            assert [p.status for p in twilio.posts] == [500, 201]
            assert twilio.posts[0].token == twilio.posts[1].token == ack.token
            [row] = await sms_rows(client, req["id"])
            assert ack.token == f"{row['event_id']}:sms"
    finally:
        twilio.close()


async def test_no_acknowledgement_while_the_caller_is_on_the_line(sqlite_url: str, twilio: TwilioStandIn) -> None:
    async with running_app(sms_settings(sqlite_url, twilio)) as client:
        req = (await client.post("/api/help-requests", json=request_body(caller_on_line=True))).json()
        unheard = (await client.post("/api/help-requests", json=request_body(question="Is there parking?"))).json()
        await eventually(lambda: twilio.sent(), timeout=5)
        events = {(r["request_id"], r["type"]) for r in (await client.get("/api/notifications")).json()}
        assert (req["id"], "help_request.acknowledged") not in events
        assert (unheard["id"], "help_request.acknowledged") in events
        assert all("parking" in post.body for post in twilio.sent())


@pytest.mark.parametrize(
    ("contact", "line"),
    [
        ("ana@example.com", "No SMS: contact 'ana@example.com' is not a phone number"),
        (None, "No SMS: the caller left no number"),
    ],
)
async def test_a_contact_that_is_no_phone_number_gets_a_timeline_line_and_no_text(
    sqlite_url: str, twilio: TwilioStandIn, contact: str | None, line: str
) -> None:
    async with running_app(sms_settings(sqlite_url, twilio)) as client:
        req = (await client.post("/api/help-requests", json=request_body(customer_contact=contact))).json()
        assert line in [h["message"] for h in req["history"]], "the acknowledgement that could not go says why at once"
        await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes, from $220."})

        async def withheld() -> list[dict]:
            return [r for r in await sms_rows(client, req["id"]) if r["status"] == "withheld"]

        [row] = await eventually(withheld)
        assert row["type"] == "help_request.resolved" and row["last_error"] == line
        assert (await history(client, req["id"])).count(line) == 2
        # The other channels still carry the answer.
        console = (await client.get("/api/notifications", params={"status": "delivered"})).json()
        assert any(r["sink"] == "console" and r["type"] == "help_request.resolved" for r in console)
    assert twilio.posts == []


async def test_stop_stops_every_text_until_start(database_url: str, twilio: TwilioStandIn) -> None:
    async with running_app(sms_settings(database_url, twilio)) as client:
        first = (await client.post("/api/help-requests", json=request_body())).json()
        await eventually(lambda: twilio.sent(), timeout=5)
        assert (await text_in(client, sender=CALLER, body="STOP")).status_code == 200
        assert "Caller texted STOP: no more texts to +14155550101 until they text START" in await history(
            client, first["id"]
        )

        await client.post(f"/api/help-requests/{first['id']}/response", json={"answer": "Yes, from $220."})
        second = (await client.post("/api/help-requests", json=request_body(question="Is there parking?"))).json()
        stopped = "No SMS: +14155550101 texted STOP; texts resume if they text START"

        async def withheld() -> list[dict]:
            rows = [r for rid in (first["id"], second["id"]) for r in await sms_rows(client, rid)]
            return [r for r in rows if r["status"] == "withheld"]

        assert stopped in [h["message"] for h in second["history"]], "no acknowledgement for a number that said STOP"
        [row] = await eventually(withheld)
        assert row["request_id"] == first["id"] and row["last_error"] == stopped
        assert len(twilio.posts) == 1, "only the acknowledgement sent before STOP"

        assert (await text_in(client, sender=CALLER, body="start")).status_code == 200
        await client.post(f"/api/help-requests/{second['id']}/response", json={"answer": "Yes, free parking."})
        [_, resumed] = await eventually(lambda: len(twilio.sent()) == 2 and twilio.sent(), timeout=5)
        assert "free parking" in resumed.body and resumed.to == CALLER


async def test_a_stop_that_comes_while_a_text_is_held_for_the_call_stops_it(
    sqlite_url: str, twilio: TwilioStandIn
) -> None:
    async with running_app(sms_settings(sqlite_url, twilio)) as client:
        req = (await client.post("/api/help-requests", json=request_body(caller_on_line=True))).json()
        await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes, from $220."})
        await text_in(client, sender=CALLER, body="Stop")
        await client.post(f"/api/help-requests/{req['id']}/presence", json={"on_line": False})

        async def withheld() -> list[dict]:
            return [r for r in await sms_rows(client, req["id"]) if r["status"] == "withheld"]

        await eventually(withheld)
    assert twilio.posts == []


@pytest.mark.model
async def test_one_caller_asking_the_same_question_twice_gets_one_acknowledgement(
    sqlite_url: str, twilio: TwilioStandIn
) -> None:
    async with running_app(sms_settings(sqlite_url, twilio)) as client:
        first = (await client.post("/api/help-requests", json=request_body())).json()
        again = (
            await client.post("/api/help-requests", json=request_body(question="hi, do you guys do balayage"))
        ).json()
        other = (
            await client.post(
                "/api/help-requests",
                json=request_body(customer_name="Bo", question="do you do balayage?", customer_contact="+14155550199"),
            )
        ).json()
        assert again["attached_to"] == first["id"] and other["attached_to"] == first["id"]
        said = f"No acknowledgement text: {CALLER} is already waiting on request {first['id']}, the same question"
        assert said in [h["message"] for h in again["history"]]
        await eventually(lambda: len(twilio.sent()) == 2, timeout=5)
        assert sorted(p.to for p in twilio.sent()) == ["+14155550101", "+14155550199"]


ON_CALL = "+14155550199"


async def test_the_on_call_phone_gets_the_supervisors_alerts_and_nothing_meant_for_callers(
    sqlite_url: str, twilio: TwilioStandIn
) -> None:
    async with running_app(sms_settings(sqlite_url, twilio, sms_on_call="(415) 555-0199")) as client:
        req = (await client.post("/api/help-requests", json=request_body(question="Do you do balayage?"))).json()
        await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes! Balayage is $220."})
        await eventually(lambda: len(twilio.sent()) == 3, timeout=6)
        to_on_call = [m for m in twilio.sent() if m.to == ON_CALL]
        [alert] = to_on_call
        assert "asked" in alert.body and "balayage" in alert.body and req["id"] in alert.body
        assert alert.token.endswith(":sms-on-call")
        assert {m.to for m in twilio.sent()} == {ON_CALL, CALLER}
        # The stand-in has the text a moment before the app has recorded the send.
        await eventually(lambda: _has_line(client, req["id"], "Supervisor notified via sms-on-call"))


async def _has_line(client: httpx.AsyncClient, rid: str, line: str) -> bool:
    return line in await history(client, rid)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"sms_on_call": "not a number"}, "is not a phone number"),
        (
            {"sms_on_call": ON_CALL, "twilio_account_sid": None, "twilio_auth_token": None, "twilio_from": None},
            "SMS_ON_CALL needs the Twilio settings",
        ),
    ],
)
def test_an_on_call_number_that_cannot_be_texted_is_refused_at_start(
    sqlite_url: str, twilio: TwilioStandIn, overrides: dict, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        sms_settings(sqlite_url, twilio, **overrides)
