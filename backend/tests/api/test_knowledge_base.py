"""Knowledge base listing, search shape, and the starter KB."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.config import DEFAULT_KB_SEED
from tests.support import make_settings, request_body, running_app


async def learn(client: httpx.AsyncClient, question: str, answer: str) -> dict:
    req = (await client.post("/api/help-requests", json=request_body(question=question))).json()
    return (await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": answer})).json()


async def test_list_is_most_recently_updated_first(client: httpx.AsyncClient) -> None:
    await learn(client, "Do you do perms?", "Yes.")
    await learn(client, "Is there parking?", "Yes, behind the salon.")
    await learn(client, "Do you do perms?", "Yes, from $110.")
    questions = [e["question"] for e in (await client.get("/api/knowledge-base")).json()]
    assert questions == ["Do you do perms?", "Is there parking?"]


async def test_search_on_an_empty_kb(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/knowledge-base/search", params={"q": "Do you do perms?"})
    assert response.status_code == 200
    body = response.json()
    assert (body["query"], body["match"], body["candidates"]) == ("Do you do perms?", None, [])
    assert body["reason"]


async def test_search_matches_the_same_question_and_ranks_candidates(client: httpx.AsyncClient) -> None:
    await learn(client, "Do you do perms?", "Yes, from $110.")
    await learn(client, "How long does a perm take?", "About two hours.")
    body = (await client.get("/api/knowledge-base/search", params={"q": "do you do PERMS"})).json()
    assert body["match"]["answer"] == "Yes, from $110."
    scores = [c["score"] for c in body["candidates"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 2
    assert body["candidates"][0]["entry"]["question"] == "Do you do perms?"


async def test_search_does_not_match_a_different_question(client: httpx.AsyncClient) -> None:
    await learn(client, "Do you do perms?", "Yes, from $110.")
    body = (await client.get("/api/knowledge-base/search", params={"q": "Do you sell perm kits?"})).json()
    assert body["match"] is None


async def test_search_needs_a_query(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/knowledge-base/search")).status_code == 422
    assert (await client.get("/api/knowledge-base/search", params={"q": ""})).status_code == 422
    assert (await client.get("/api/knowledge-base/search", params={"q": "x" * 2001})).status_code == 422


async def test_starter_kb_loads_once_into_an_empty_kb(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, kb_seed_file=str(DEFAULT_KB_SEED))
    seed = json.loads(DEFAULT_KB_SEED.read_text())
    async with running_app(settings) as client:
        kb = (await client.get("/api/knowledge-base")).json()
        assert {e["question"] for e in kb} == {item["question"] for item in seed}
        assert all(e["source_request_id"] is None for e in kb)
    async with running_app(settings) as client:
        assert len((await client.get("/api/knowledge-base")).json()) == len(seed)


async def test_starter_kb_is_a_real_salon_profile_kb() -> None:
    seed = json.loads(DEFAULT_KB_SEED.read_text())
    assert 15 <= len(seed) <= 30
    assert all(item["question"].strip() and item["answer"].strip() and item["topic"] for item in seed)
    assert len({item["question"].casefold() for item in seed}) == len(seed)


async def test_empty_seed_setting_loads_nothing(sqlite_url: str, tmp_path: Path) -> None:
    async with running_app(make_settings(sqlite_url, kb_seed_file="")) as client:
        assert (await client.get("/api/knowledge-base")).json() == []


async def add(client: httpx.AsyncClient, question: str, answer: str, **extra: object) -> httpx.Response:
    return await client.post("/api/knowledge-base", json={"question": question, "answer": answer, **extra})


@pytest.mark.model
async def test_supervisor_adds_an_entry_and_it_answers_at_once(client: httpx.AsyncClient) -> None:
    response = await add(client, "Do you do perms?", "Yes, perms start at $110.", topic="services", by="Priya")
    assert response.status_code == 201
    entry = response.json()
    assert entry["source_request_id"] is None and entry["times_used"] == 0
    match = (await client.get("/api/knowledge-base/search", params={"q": "do you guys still do perms"})).json()["match"]
    assert match["id"] == entry["id"]
    detail = (await client.get(f"/api/knowledge-base/{entry['id']}")).json()
    assert [(h["action"], h["actor"]) for h in detail["history"]] == [("learned", "Priya")]


async def test_adding_a_question_that_exists_is_409(client: httpx.AsyncClient) -> None:
    await add(client, "Do you do perms?", "Yes.")
    response = await add(client, "do you do perms", "No.")
    assert response.status_code == 409
    assert "exists" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"question": "", "answer": "A"},
        {"question": "Q?", "answer": ""},
        {"question": "Q?"},
        {"question": "Q" * 2001, "answer": "A"},
    ],
)
async def test_adding_bad_entries_is_422(client: httpx.AsyncClient, body: dict) -> None:
    assert (await client.post("/api/knowledge-base", json=body)).status_code == 422


async def test_edit_changes_what_search_says_and_keeps_history(client: httpx.AsyncClient) -> None:
    entry = (await add(client, "Do you do perms?", "Yes, from $110.")).json()
    response = await client.patch(f"/api/knowledge-base/{entry['id']}", json={"answer": "Yes, from $120.", "by": "Sam"})
    assert response.status_code == 200 and response.json()["answer"] == "Yes, from $120."
    match = (await client.get("/api/knowledge-base/search", params={"q": "Do you do perms?"})).json()["match"]
    assert match["answer"] == "Yes, from $120."
    history = (await client.get(f"/api/knowledge-base/{entry['id']}")).json()["history"]
    assert [(h["action"], h["answer"]) for h in history] == [
        ("learned", "Yes, from $110."),
        ("edited", "Yes, from $120."),
    ]


async def test_edit_errors(client: httpx.AsyncClient) -> None:
    perms = (await add(client, "Do you do perms?", "Yes.")).json()
    await add(client, "Is there parking?", "Yes.")
    assert (await client.patch(f"/api/knowledge-base/{perms['id']}", json={})).status_code == 422
    clash = await client.patch(f"/api/knowledge-base/{perms['id']}", json={"question": "is there parking"})
    assert clash.status_code == 409
    assert (await client.patch("/api/knowledge-base/nope", json={"answer": "x"})).status_code == 404


async def test_retire_stops_matching_and_keeps_the_entry_readable(client: httpx.AsyncClient) -> None:
    entry = (await add(client, "Do you do perms?", "Yes.")).json()
    retired = await client.delete(f"/api/knowledge-base/{entry['id']}")
    assert retired.status_code == 200 and retired.json()["retired_at"] is not None
    assert (await client.get("/api/knowledge-base/search", params={"q": "Do you do perms?"})).json()["match"] is None
    assert (await client.get("/api/knowledge-base")).json() == []
    assert [e["id"] for e in (await client.get("/api/knowledge-base", params={"include_retired": True})).json()] == [
        entry["id"]
    ]
    assert (await client.get(f"/api/knowledge-base/{entry['id']}")).json()["history"][-1]["action"] == "retired"
    assert (await client.delete(f"/api/knowledge-base/{entry['id']}")).status_code == 404
    # the question is free again: a new entry may take it
    assert (await add(client, "Do you do perms?", "Yes, again.")).status_code == 201


async def test_uses_are_counted(client: httpx.AsyncClient) -> None:
    entry = (await add(client, "Do you do perms?", "Yes.")).json()
    for _ in range(3):
        assert (await client.post(f"/api/knowledge-base/{entry['id']}/uses")).status_code == 204
    listed = (await client.get("/api/knowledge-base")).json()[0]
    assert listed["times_used"] == 3 and listed["last_used_at"] is not None
    assert (await client.post("/api/knowledge-base/nope/uses")).status_code == 404


async def test_concurrent_edits_of_different_fields_both_stay(client: httpx.AsyncClient) -> None:
    import asyncio

    entry = (await add(client, "Do you do perms?", "Original answer.")).json()
    await asyncio.gather(
        client.patch(f"/api/knowledge-base/{entry['id']}", json={"question": "Do you do perms at all?"}),
        client.patch(f"/api/knowledge-base/{entry['id']}", json={"answer": "New answer."}),
    )
    final = (await client.get(f"/api/knowledge-base/{entry['id']}")).json()
    assert (final["question"], final["answer"]) == ("Do you do perms at all?", "New answer.")


@pytest.mark.parametrize("q", ["!", "???", "😀"])
async def test_symbol_only_search_matches_nothing(client: httpx.AsyncClient, q: str) -> None:
    await add(client, "Do you do perms?", "Yes.")
    response = await client.get("/api/knowledge-base/search", params={"q": q})
    assert response.status_code == 200 and response.json()["match"] is None


async def test_blank_search_error_has_the_usual_422_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/knowledge-base/search", params={"q": "  "})
    assert response.status_code == 422 and isinstance(response.json()["detail"], list)
    entry = (await add(client, "Do you do perms?", "Yes.")).json()
    assert (await client.delete(f"/api/knowledge-base/{entry['id']}", params={"by": "\x00"})).status_code == 422
