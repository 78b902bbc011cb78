"""Two callers, one question: the second request joins the first; one answer reaches both."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support import WebhookReceiver, eventually, make_settings, request_body, running_app

pytestmark = pytest.mark.model


async def ask(client: httpx.AsyncClient, name: str, question: str) -> dict:
    response = await client.post("/api/help-requests", json=request_body(customer_name=name, question=question))
    assert response.status_code == 201
    return response.json()


async def test_same_question_attaches_and_one_answer_resolves_both(database_url: str, webhook: WebhookReceiver) -> None:
    async with running_app(make_settings(database_url, notify_webhook_url=webhook.url)) as client:
        first = await ask(client, "Ana", "Do you do balayage?")
        second = await ask(client, "Bo", "hi, do you guys do balayage")
        assert first["attached_to"] is None
        assert second["attached_to"] == first["id"]
        assert second["status"] == "pending"
        head = (await client.get(f"/api/help-requests/{first['id']}")).json()
        assert head["attached"] == [second["id"]]
        assert any("Bo asked the same question" in h["message"] for h in head["history"])

        answered = await client.post(f"/api/help-requests/{first['id']}/response", json={"answer": "Yes, from $220."})
        assert answered.status_code == 200
        joined = (await client.get(f"/api/help-requests/{second['id']}")).json()
        assert joined["status"] == "resolved" and joined["answer"] == "Yes, from $220."
        assert [r["answer"] for r in joined["responses"]] == ["Yes, from $220."]
        assert len((await client.get("/api/knowledge-base")).json()) == 1

        async def follow_ups() -> dict:
            done = {d.body["request"]["id"]: d.body for d in webhook.accepted("help_request.resolved")}
            return done if len(done) == 2 else {}

        texts = await eventually(follow_ups)
        assert "Ana" in texts[first["id"]]["message"] and "Bo" in texts[second["id"]]["message"]
        assert all("$220" in t["message"] for t in texts.values())


async def test_answering_the_attached_request_resolves_the_group(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url)) as client:
        first = await ask(client, "Ana", "Can I bring my dog?")
        second = await ask(client, "Bo", "can I bring my dog with me")
        assert second["attached_to"] == first["id"]
        await client.post(f"/api/help-requests/{second['id']}/response", json={"unresolved": True})
        statuses = [(await client.get(f"/api/help-requests/{r['id']}")).json()["status"] for r in (first, second)]
        assert statuses == ["unresolved", "unresolved"]


async def test_different_or_near_miss_questions_stay_apart(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url)) as client:
        saturday = await ask(client, "Ana", "Are you open on Saturday evenings?")
        for question in ("Are you open on Sunday evenings?", "Is there parking?", "How long does balayage take?"):
            other = await ask(client, "Bo", question)
            assert other["attached_to"] is None, question
        again = await ask(client, "Cy", "are you open saturday evening")
        assert again["attached_to"] == saturday["id"]


async def test_merging_can_be_switched_off(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url, merge_duplicates=False)) as client:
        await ask(client, "Ana", "Do you do balayage?")
        assert (await ask(client, "Bo", "Do you do balayage?"))["attached_to"] is None


async def test_callers_asking_the_same_at_the_same_moment_join_one_group(database_url: str) -> None:
    """Requests arriving together open in one transaction; the merging still sees each earlier one."""
    questions = ["Do you do balayage?", "do you do balayage", "Is there parking?", "is there any parking"] * 3
    async with running_app(make_settings(database_url)) as client:
        made = await asyncio.gather(*(ask(client, f"Caller {n}", q) for n, q in enumerate(questions)))
        heads = [r for r in made if r["attached_to"] is None]
        assert sorted("balayage" in h["question"] for h in heads) == [False, True]
        by_id = {h["id"]: h["question"] for h in heads}
        for request in made:
            if request["attached_to"] is not None:
                assert ("balayage" in by_id[request["attached_to"]]) == ("balayage" in request["question"])
        listed = (await client.get("/api/help-requests", params={"status": "pending", "limit": 50})).json()
        assert {r["id"] for r in listed} == {r["id"] for r in made}
        assert len({r["call_key"] for r in made}) == len(made)
