"""A KB entry learns callers' wording: answering a request with an entry (or with its answer again)
adds the caller's question as a phrasing, which the next caller who says it so is answered by."""

from __future__ import annotations

import json

import httpx
import pytest

from app.config import DEFAULT_KB_SEED
from tests.support import make_settings, request_body, running_app

BLOWOUT = {"question": "How much is a blowout?", "answer": "A blowout is $45 and takes about 40 minutes."}
# A wording nothing but the learned phrasing can tie to the blowout entry.
REGULAR = "Can I get my usual thing from last time with Dana?"


async def ask(client: httpx.AsyncClient, question: str) -> dict:
    response = await client.post("/api/help-requests", json=request_body(question=question))
    assert response.status_code == 201
    return response.json()


async def search(client: httpx.AsyncClient, q: str) -> dict:
    return (await client.get("/api/knowledge-base/search", params={"q": q})).json()


async def test_answering_with_an_entry_teaches_the_next_caller(client: httpx.AsyncClient) -> None:
    entry = (await client.post("/api/knowledge-base", json=BLOWOUT)).json()
    assert (await search(client, REGULAR))["match"] is None
    req = await ask(client, REGULAR)

    answered = await client.post(f"/api/help-requests/{req['id']}/response", json={"entry_id": entry["id"]})
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status"], answered.json()["answer"]) == ("resolved", BLOWOUT["answer"])

    learned = (await client.get(f"/api/knowledge-base/{entry['id']}")).json()
    assert [p["text"] for p in learned["phrasings"]] == [REGULAR]
    assert learned["phrasings"][0]["source_request_id"] == req["id"]
    assert learned["history"][-1]["action"] == "phrasing added" and learned["history"][-1]["phrasing"] == REGULAR
    assert [e["id"] for e in (await client.get("/api/knowledge-base")).json()] == [entry["id"]]
    timeline = " | ".join(t["message"] for t in (await client.get(f"/api/help-requests/{req['id']}")).json()["history"])
    assert f"wording was added to knowledge base entry {entry['id']}" in timeline

    result = await search(client, REGULAR.lower().rstrip("?"))
    assert result["match"]["id"] == entry["id"], result["reason"]
    assert result["candidates"][0]["entry"]["phrasings"][0]["text"] == REGULAR


async def test_removing_a_phrasing_stops_it_matching(client: httpx.AsyncClient) -> None:
    entry = (await client.post("/api/knowledge-base", json=BLOWOUT)).json()
    req = await ask(client, REGULAR)
    await client.post(f"/api/help-requests/{req['id']}/response", json={"entry_id": entry["id"]})
    phrasing = (await client.get(f"/api/knowledge-base/{entry['id']}")).json()["phrasings"][0]

    removed = await client.delete(
        f"/api/knowledge-base/{entry['id']}/phrasings/{phrasing['id']}", params={"by": "Priya"}
    )
    assert removed.status_code == 200 and removed.json()["phrasings"] == []
    assert (await search(client, REGULAR))["match"] is None
    history = (await client.get(f"/api/knowledge-base/{entry['id']}")).json()["history"]
    assert (history[-1]["action"], history[-1]["actor"], history[-1]["phrasing"]) == (
        "phrasing removed",
        "Priya",
        REGULAR,
    )
    again = await client.delete(f"/api/knowledge-base/{entry['id']}/phrasings/{phrasing['id']}")
    assert again.status_code == 404


async def test_a_supervisor_adds_a_phrasing_by_hand(client: httpx.AsyncClient) -> None:
    entry = (await client.post("/api/knowledge-base", json=BLOWOUT)).json()
    other = (
        await client.post("/api/knowledge-base", json={"question": "Do you take walk-ins?", "answer": "Yes."})
    ).json()
    added = await client.post(f"/api/knowledge-base/{entry['id']}/phrasings", json={"text": REGULAR, "by": "Priya"})
    assert added.status_code == 201 and added.json()["phrasings"][0]["actor"] == "Priya"
    assert (await search(client, REGULAR))["match"]["id"] == entry["id"]
    clash = await client.post(f"/api/knowledge-base/{entry['id']}/phrasings", json={"text": "do you take WALK-INS"})
    assert clash.status_code == 409 and other["id"] in clash.json()["detail"]
    # The same wording given to another entry moves there: one wording leads to one answer.
    moved = await client.post(f"/api/knowledge-base/{other['id']}/phrasings", json={"text": REGULAR})
    assert moved.status_code == 201
    assert (await client.get(f"/api/knowledge-base/{entry['id']}")).json()["phrasings"] == []
    assert (await search(client, REGULAR))["match"]["id"] == other["id"]


async def test_answering_with_an_entry_is_checked(client: httpx.AsyncClient) -> None:
    entry = (await client.post("/api/knowledge-base", json=BLOWOUT)).json()
    req = await ask(client, REGULAR)
    path = f"/api/help-requests/{req['id']}/response"
    both = await client.post(path, json={"entry_id": entry["id"], "unresolved": True})
    assert both.status_code == 422
    missing = await client.post(path, json={"entry_id": "no-such-entry"})
    assert missing.status_code == 404
    await client.delete(f"/api/knowledge-base/{entry['id']}")
    retired = await client.post(path, json={"entry_id": entry["id"]})
    assert retired.status_code == 404
    assert (await client.get(f"/api/help-requests/{req['id']}")).json()["status"] == "pending"


@pytest.mark.model
async def test_the_same_answer_again_adds_a_phrasing_not_an_entry(client: httpx.AsyncClient) -> None:
    walk_ins = "Walk-ins are welcome whenever a stylist is free; appointments get priority."
    first = await ask(client, "Do you take walk-ins?")
    await client.post(f"/api/help-requests/{first['id']}/response", json={"answer": walk_ins})
    second = await ask(client, "can I just walk in")
    await client.post(f"/api/help-requests/{second['id']}/response", json={"answer": walk_ins})
    entries = (await client.get("/api/knowledge-base")).json()
    assert len(entries) == 1
    assert [p["text"] for p in entries[0]["phrasings"]] == ["can I just walk in"]


async def test_a_short_answer_given_twice_does_not_join_unrelated_questions(client: httpx.AsyncClient) -> None:
    for question in ("Do you do perms?", "Is there parking?"):
        req = await ask(client, question)
        await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes."})
    entries = (await client.get("/api/knowledge-base")).json()
    assert sorted(e["question"] for e in entries) == ["Do you do perms?", "Is there parking?"]
    assert all(e["phrasings"] == [] for e in entries)


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What are your hours?", "What are your hours?"),
        ("what are your hours", "What are your hours?"),
        ("where are you located?", "Where is the salon located?"),
    ],
)
async def test_everyday_questions_are_answered_by_the_starter_kb(sqlite_url: str, question: str, expected: str) -> None:
    assert expected in {e["question"] for e in json.loads(DEFAULT_KB_SEED.read_text())}
    async with running_app(make_settings(sqlite_url, kb_seed_file=str(DEFAULT_KB_SEED))) as client:
        result = await search(client, question)
    assert result["match"] is not None, result["reason"]
    assert result["match"]["question"] == expected


@pytest.mark.model
async def test_an_entry_stops_collecting_phrasings_at_the_cap(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.services.kb import service

    monkeypatch.setattr(service, "MAX_PHRASINGS", 1)
    walk_ins = "Walk-ins are welcome whenever a stylist is free; appointments get priority."
    for question in ("Do you take walk-ins?", "can I just walk in", "can I just walk in today"):
        req = await ask(client, question)
        await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": walk_ins})
    entries = (await client.get("/api/knowledge-base")).json()
    assert sorted(e["question"] for e in entries) == ["Do you take walk-ins?", "can I just walk in today"]


@pytest.mark.model
async def test_phrasings_written_without_the_model_are_embedded_at_start(client: httpx.AsyncClient) -> None:
    from sqlalchemy import select, update

    from app.models import KnowledgeBasePhrasing

    entry = (await client.post("/api/knowledge-base", json=BLOWOUT)).json()
    await client.post(f"/api/knowledge-base/{entry['id']}/phrasings", json={"text": REGULAR})
    db, kb = client.app.state.db, client.app.state.services.kb  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await session.execute(update(KnowledgeBasePhrasing).values(embedding=None, embedding_model=None))
    assert await kb.backfill_embeddings() == 1
    async with db.read() as session:
        models = (await session.scalars(select(KnowledgeBasePhrasing.embedding_model))).all()
    assert models == [kb.embedder.name]


@pytest.mark.parametrize("phrasing_id", ["x" * 37, "bad%00id", "no-such-phrasing"])
async def test_removing_an_unknown_phrasing_is_404(database_url: str, phrasing_id: str) -> None:
    async with running_app(make_settings(database_url)) as client:
        entry = (await client.post("/api/knowledge-base", json=BLOWOUT)).json()
        response = await client.delete(f"/api/knowledge-base/{entry['id']}/phrasings/{phrasing_id}")
    assert response.status_code == 404 and response.json()["detail"]
