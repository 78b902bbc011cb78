"""Knowledge base listing, search shape, and the starter KB."""
from __future__ import annotations

import json
from pathlib import Path

import httpx

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
