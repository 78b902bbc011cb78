"""Every help-request endpoint's success and error codes (shared/CONTRACT.md)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from tests.support import request_body


async def create(client: httpx.AsyncClient, **overrides: object) -> dict:
    response = await client.post("/api/help-requests", json=request_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_returns_pending_request_with_deadline_and_timeline(client: httpx.AsyncClient) -> None:
    transcript = [{"role": "caller", "text": "Hi, do you do balayage?"}, {"role": "agent", "text": "Let me check."}]
    body = await create(client, transcript=transcript, notes="regular client")

    assert body["status"] == "pending"
    assert body["customer_name"] == "Ana" and body["channel"] == "phone"
    assert body["customer_contact"] == "+14155550101" and body["notes"] == "regular client"
    assert body["transcript"] == transcript
    assert body["answer"] is None and body["resolved_at"] is None
    created = datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(seconds=1800)
    assert body["history"][0]["message"].startswith("Ana asked by phone")
    assert any("Escalated" in item["message"] for item in body["history"])


async def test_channel_defaults_to_phone_and_unknown_fields_are_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/help-requests", json={"customer_name": "Bo", "question": "Parking?", "follow_up_minutes": 5}
    )
    assert response.status_code == 201
    assert response.json()["channel"] == "phone"


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("empty question", request_body(question="")),
        ("blank question", request_body(question="   ")),
        ("question over 2000 characters", request_body(question="x" * 2001)),
        ("unknown channel", request_body(channel="pigeon")),
        ("missing question", {"customer_name": "A"}),
        ("missing name", {"question": "Hi?"}),
        ("contact over 200 characters", request_body(customer_contact="1" * 201)),
        ("transcript line without text", request_body(transcript=[{"role": "caller"}])),
        ("question not a string", request_body(question=["a"])),
        ("NUL in the question", request_body(question="Hi\x00?")),
        ("NUL in the transcript", request_body(transcript=[{"role": "caller", "text": "a\x00"}])),
    ],
)
async def test_create_rejects_bad_input_with_422(client: httpx.AsyncClient, label: str, body: dict) -> None:
    response = await client.post("/api/help-requests", json=body)
    assert response.status_code == 422, label
    assert response.json()["detail"], "a 422 must say what is wrong"


async def test_question_of_exactly_2000_characters_is_accepted(client: httpx.AsyncClient) -> None:
    await create(client, question="q" * 2000)


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/help-requests", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


async def test_list_is_newest_first_and_filters_by_status(client: httpx.AsyncClient) -> None:
    first = await create(client, question="First?")
    second = await create(client, question="Second?")
    await client.post(f"/api/help-requests/{first['id']}/response", json={"answer": "Yes."})

    everything = (await client.get("/api/help-requests")).json()
    assert [r["id"] for r in everything] == [second["id"], first["id"]]
    pending = (await client.get("/api/help-requests", params={"status": "pending"})).json()
    assert [r["id"] for r in pending] == [second["id"]]
    resolved = (await client.get("/api/help-requests", params={"status": "resolved"})).json()
    assert [r["id"] for r in resolved] == [first["id"]]


async def test_list_paginates(client: httpx.AsyncClient) -> None:
    ids = [(await create(client, question=f"Question {i}?"))["id"] for i in range(5)]
    page = (await client.get("/api/help-requests", params={"limit": 2, "offset": 1})).json()
    assert [r["id"] for r in page] == list(reversed(ids))[1:3]


@pytest.mark.parametrize("query", [{"status": "bogus"}, {"limit": 0}, {"limit": 501}, {"offset": -1}])
async def test_list_rejects_bad_query_with_422(client: httpx.AsyncClient, query: dict) -> None:
    assert (await client.get("/api/help-requests", params=query)).status_code == 422


async def test_get_returns_request_with_responses_and_404_for_unknown(client: httpx.AsyncClient) -> None:
    req = await create(client)
    await client.post(
        f"/api/help-requests/{req['id']}/response", json={"answer": "Yes, from $220.", "topic": "services"}
    )

    detail = (await client.get(f"/api/help-requests/{req['id']}")).json()
    assert detail["status"] == "resolved"
    assert len(detail["responses"]) == 1
    response = detail["responses"][0]
    assert response["answer"] == "Yes, from $220." and response["topic"] == "services"
    assert response["unresolved"] is False and response["request_id"] == req["id"]

    missing = await client.get(f"/api/help-requests/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]


async def test_answer_resolves_learns_and_records_the_timeline(client: httpx.AsyncClient) -> None:
    req = await create(client)
    response = await client.post(
        f"/api/help-requests/{req['id']}/response",
        json={"answer": "  Yes, balayage starts at $220.  ", "topic": "services", "answered_by": "Priya"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "resolved"
    assert body["answer"] == "Yes, balayage starts at $220."
    assert body["answered_by"] == "Priya"
    assert body["resolved_at"] is not None
    messages = [item["message"] for item in body["history"]]
    assert any(m.startswith("Answered by Priya") for m in messages)

    kb = (await client.get("/api/knowledge-base")).json()
    assert len(kb) == 1
    assert kb[0]["question"] == "Do you do balayage?"
    assert kb[0]["answer"] == "Yes, balayage starts at $220."
    assert kb[0]["topic"] == "services" and kb[0]["source_request_id"] == req["id"]


async def test_answer_to_a_question_already_in_the_kb_updates_that_entry(client: httpx.AsyncClient) -> None:
    first = await create(client, question="Do you do balayage?")
    await client.post(f"/api/help-requests/{first['id']}/response", json={"answer": "From $200."})
    second = await create(client, question="  do you DO balayage  ")
    await client.post(f"/api/help-requests/{second['id']}/response", json={"answer": "From $220 now."})

    kb = (await client.get("/api/knowledge-base")).json()
    assert len(kb) == 1
    assert kb[0]["answer"] == "From $220 now." and kb[0]["source_request_id"] == second["id"]


async def test_unresolved_response_writes_no_kb_and_needs_no_answer(client: httpx.AsyncClient) -> None:
    req = await create(client)
    response = await client.post(
        f"/api/help-requests/{req['id']}/response", json={"unresolved": True, "notes": "ask the owner"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "unresolved"
    assert response.json()["answer"] is None
    assert (await client.get("/api/knowledge-base")).json() == []
    detail = (await client.get(f"/api/help-requests/{req['id']}")).json()
    assert detail["responses"][0]["unresolved"] is True
    assert detail["responses"][0]["notes"] == "ask the owner"


@pytest.mark.parametrize(
    "body",
    [
        {"answer": ""},
        {"answer": "   "},
        {},
        {"answer": "x" * 4001},
        {"unresolved": "maybe"},
        {"answer": "Yes", "topic": "t" * 101},
        {"answer": "Yes\x00"},
    ],
)
async def test_response_rejects_bad_input_with_422(client: httpx.AsyncClient, body: dict) -> None:
    req = await create(client)
    response = await client.post(f"/api/help-requests/{req['id']}/response", json=body)
    assert response.status_code == 422
    still = (await client.get(f"/api/help-requests/{req['id']}")).json()
    assert still["status"] == "pending"


async def test_response_precedence_is_422_then_404_then_409(client: httpx.AsyncClient) -> None:
    unknown = uuid.uuid4()
    assert (await client.post(f"/api/help-requests/{unknown}/response", json={"answer": ""})).status_code == 422
    assert (await client.post(f"/api/help-requests/{unknown}/response", json={"answer": "Hi"})).status_code == 404

    req = await create(client)
    assert (await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "A"})).status_code == 200
    assert (await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": ""})).status_code == 422


async def test_second_answer_is_409_showing_the_winner_and_changes_nothing(client: httpx.AsyncClient) -> None:
    req = await create(client)
    await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "First.", "answered_by": "Priya"})
    late = await client.post(
        f"/api/help-requests/{req['id']}/response", json={"answer": "Second.", "answered_by": "Sam"}
    )

    assert late.status_code == 409
    assert late.json()["current"]["answer"] == "First."
    assert late.json()["current"]["answered_by"] == "Priya"
    detail = (await client.get(f"/api/help-requests/{req['id']}")).json()
    assert detail["answer"] == "First." and len(detail["responses"]) == 1
    assert [e["answer"] for e in (await client.get("/api/knowledge-base")).json()] == ["First."]


async def test_manual_timeout_and_its_conflicts(client: httpx.AsyncClient) -> None:
    req = await create(client)
    response = await client.post(f"/api/help-requests/{req['id']}/timeout")
    assert response.status_code == 200
    assert response.json()["status"] == "unresolved"
    assert response.json()["resolved_at"] is not None

    assert (await client.post(f"/api/help-requests/{req['id']}/timeout")).status_code == 409
    assert (await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "A"})).status_code == 409
    assert (await client.post(f"/api/help-requests/{uuid.uuid4()}/timeout")).status_code == 404


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"customer_name": "a", "question": "\\ud800"}',  # a lone surrogate, echoed back in the 422
        b'{"customer_name": "a", "question": "caf\xe9"}',  # not UTF-8
        b'{"customer_name": "a", "notes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
async def test_undecodable_bodies_are_422_not_500(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/api/help-requests", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_body_over_a_megabyte_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/help-requests", json=request_body(notes="x" * 2_000_000))
    assert response.status_code == 413


async def test_body_over_a_megabyte_sent_in_chunks_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"customer_name": "Ana", "question": "Do you do perms?", "notes": "'
        for _ in range(40):
            yield b"x" * 65_536
        yield b'"}'

    response = await client.post("/api/help-requests", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert (await client.get("/api/help-requests")).json() == []


@pytest.mark.parametrize("question", ["???", "😀😀", "\x01", "¿?"])
async def test_a_question_without_letters_or_digits_is_422(client: httpx.AsyncClient, question: str) -> None:
    assert (await client.post("/api/help-requests", json=request_body(question=question))).status_code == 422


async def test_huge_offset_is_422(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/help-requests", params={"offset": 2**63})).status_code == 422


async def test_questions_naming_nothing_are_never_merged(client: httpx.AsyncClient) -> None:
    first = (await client.post("/api/help-requests", json=request_body(question="Yes"))).json()
    for question in ("No", "Can I do that?", "Hello?"):
        other = (await client.post("/api/help-requests", json=request_body(question=question))).json()
        assert other["attached_to"] is None, question
    assert first["attached_to"] is None


async def test_health_fails_when_the_database_takes_no_writes(client: httpx.AsyncClient) -> None:
    """A full disk: reads work, every write fails. /health says so, and writes are 503, not 500."""
    import sqlite3

    from sqlalchemy import event

    engine = client.app.state.db.engine.sync_engine  # type: ignore[attr-defined]

    def disk_full(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError("database or disk is full")

    event.listen(engine, "before_cursor_execute", disk_full)
    try:
        health = await client.get("/health")
        assert health.status_code == 503 and "full" in health.json()["database"]
        created = await client.post("/api/help-requests", json=request_body())
        assert created.status_code == 503 and created.headers["Retry-After"]
        assert (await client.get("/api/help-requests")).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", disk_full)
    assert (await client.get("/health")).status_code == 200
