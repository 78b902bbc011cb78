"""Answering races: exactly one winner, whatever the concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack

import httpx
import pytest

from app.models import OutboxEvent, SupervisorResponse
from tests.support import eventually, make_settings, request_body, running_app


async def _count(client: httpx.AsyncClient, model: type, **where: object) -> int:
    from sqlalchemy import func, select

    db = client.app.state.db  # type: ignore[attr-defined]
    async with db.read() as session:
        stmt = select(func.count()).select_from(model).filter_by(**where)
        return (await session.execute(stmt)).scalar_one()


async def test_twelve_simultaneous_answers_give_one_winner(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as client:
        req = (await client.post("/api/help-requests", json=request_body())).json()
        responses = await asyncio.gather(
            *(
                client.post(f"/api/help-requests/{req['id']}/response", json={"answer": f"Yes, $180 (v{i})."})
                for i in range(12)
            )
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [409] * 11
        winner = next(r.json() for r in responses if r.status_code == 200)

        kb = (await client.get("/api/knowledge-base")).json()
        assert [(e["answer"], e["source_request_id"]) for e in kb] == [(winner["answer"], req["id"])]
        assert await _count(client, SupervisorResponse, request_id=req["id"]) == 1
        assert await _count(client, OutboxEvent, request_id=req["id"], type="help_request.resolved") == 1


async def test_two_named_supervisors_racing_the_loser_is_told_who_won_and_what(database_url: str) -> None:
    """Priya and Bob answer the same request at once, through two app instances (two API processes):
    one wins; the other's 409 names the winner and gives the answer the caller got."""
    async with AsyncExitStack() as stack:
        apps = [
            await stack.enter_async_context(running_app(make_settings(database_url, supervisor_token="adm")))
            for _ in range(2)
        ]
        accounts = apps[0].app.state.services.supervisors  # type: ignore[attr-defined]
        tokens = {name: (await accounts.add(name)).token for name in ("Priya", "Bob")}
        for attempt in range(4):
            question = f"Do you do perms on day {attempt}?"
            rid = (
                await apps[0].post(
                    "/api/help-requests", json=request_body(question=question), headers={"Authorization": "Bearer adm"}
                )
            ).json()["id"]
            names = ["Priya", "Bob"] if attempt % 2 else ["Bob", "Priya"]
            responses = await asyncio.gather(
                *(
                    apps[i].post(
                        f"/api/help-requests/{rid}/response",
                        json={"answer": f"Yes, {name} says so ({attempt})."},
                        headers={"Authorization": f"Bearer {tokens[name]}"},
                    )
                    for i, name in enumerate(names)
                )
            )
            assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
            won = next(r.json() for r in responses if r.status_code == 200)
            lost = next(r.json() for r in responses if r.status_code == 409)
            winner = won["answered_by"]
            assert won["answer"] == f"Yes, {winner} says so ({attempt})."
            assert re.fullmatch(rf"{winner} answered (just now|\d+ s ago): {re.escape(won['answer'])}", lost["detail"])
            assert (lost["current"]["answered_by"], lost["current"]["answer"]) == (winner, won["answer"])
            assert await _count(apps[1], SupervisorResponse, request_id=rid) == 1


async def test_answers_racing_through_two_app_instances_on_one_database(postgres_url: str) -> None:
    """Two app instances (two connection pools, as two API processes would have) share PostgreSQL."""
    async with AsyncExitStack() as stack:
        apps = [await stack.enter_async_context(running_app(make_settings(postgres_url))) for _ in range(2)]
        req = (await apps[0].post("/api/help-requests", json=request_body())).json()
        responses = await asyncio.gather(
            *(
                apps[i % 2].post(f"/api/help-requests/{req['id']}/response", json={"answer": f"v{i}"})
                for i in range(12)
            ),
            apps[1].post(f"/api/help-requests/{req['id']}/timeout"),
        )
        assert sorted(r.status_code for r in responses) == [200] + [409] * 12
        final = (await apps[1].get(f"/api/help-requests/{req['id']}")).json()
        assert len(final["responses"]) <= 1
        expected_kb = 1 if final["status"] == "resolved" else 0
        assert len((await apps[0].get("/api/knowledge-base")).json()) == expected_kb


async def test_same_question_answered_concurrently_for_two_requests_keeps_one_kb_entry(database_url: str) -> None:
    # Unmerged on purpose: separate requests with one question, answered at once, race on the KB upsert.
    async with running_app(make_settings(database_url, merge_duplicates=False)) as client:
        ids = [(await client.post("/api/help-requests", json=request_body())).json()["id"] for _ in range(6)]
        responses = await asyncio.gather(
            *(client.post(f"/api/help-requests/{rid}/response", json={"answer": f"A{n}"}) for n, rid in enumerate(ids))
        )
        assert {r.status_code for r in responses} == {200}
        kb = (await client.get("/api/knowledge-base")).json()
        assert len(kb) == 1


@pytest.mark.model
async def test_kb_written_through_one_app_is_searched_through_another(postgres_url: str) -> None:
    """Each API process keeps its own search index; a KB write made by one reaches the others."""
    async with AsyncExitStack() as stack:
        writer, reader = [await stack.enter_async_context(running_app(make_settings(postgres_url))) for _ in range(2)]
        entry = (
            await writer.post("/api/knowledge-base", json={"question": "Do you do perms?", "answer": "Yes."})
        ).json()

        async def found() -> bool:
            match = (await reader.get("/api/knowledge-base/search", params={"q": "do you guys do perms"})).json()[
                "match"
            ]
            return bool(match) and match["id"] == entry["id"]

        await eventually(found, timeout=3)
        await writer.delete(f"/api/knowledge-base/{entry['id']}")

        async def gone() -> bool:
            return (await reader.get("/api/knowledge-base/search", params={"q": "do you do perms"})).json()[
                "match"
            ] is None

        await eventually(gone, timeout=3)


async def test_answering_a_request_and_its_merged_duplicate_at_once_never_deadlocks(postgres_url: str) -> None:
    """Each answer locks the whole group in one order: one wins, the other gets 409, never a 500."""
    async with AsyncExitStack() as stack:
        apps = [await stack.enter_async_context(running_app(make_settings(postgres_url))) for _ in range(2)]
        for attempt in range(15):
            question = f"Do you do perms on day {attempt}?"
            head = (await apps[0].post("/api/help-requests", json=request_body(question=question))).json()
            duplicate = (await apps[0].post("/api/help-requests", json=request_body(question=question))).json()
            assert duplicate["attached_to"] == head["id"]
            responses = await asyncio.gather(
                apps[0].post(f"/api/help-requests/{head['id']}/response", json={"answer": f"Yes ({attempt}a)."}),
                apps[1].post(f"/api/help-requests/{duplicate['id']}/response", json={"answer": f"Yes ({attempt}b)."}),
            )
            assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
            answers = {
                (await apps[0].get(f"/api/help-requests/{rid}")).json()["answer"]
                for rid in (head["id"], duplicate["id"])
            }
            assert len(answers) == 1


async def test_connections_killed_mid_traffic_give_success_or_503_never_500(postgres_url: str) -> None:
    import asyncpg

    from tests.conftest import PG_URL

    database = postgres_url.rsplit("/", 1)[1]
    async with running_app(make_settings(postgres_url)) as client:
        rid = (await client.post("/api/help-requests", json=request_body())).json()["id"]
        admin = await asyncpg.connect(PG_URL)
        try:
            codes: list[int] = []

            async def traffic() -> None:
                for i in range(40):
                    calls = [
                        client.post("/api/help-requests", json=request_body(question=f"Do you do perms, try {i}?")),
                        client.get(f"/api/help-requests/{rid}"),
                        client.get("/api/knowledge-base"),
                    ]
                    codes.extend(r.status_code for r in await asyncio.gather(*calls))

            async def kill() -> None:
                for _ in range(8):
                    await asyncio.sleep(0.05)
                    await admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                        database,
                    )

            await asyncio.gather(traffic(), kill())
        finally:
            await admin.close()
        assert set(codes) <= {200, 201, 503}, sorted(set(codes))
        assert codes.count(503) < len(codes)


async def test_a_request_that_cannot_be_opened_costs_no_other_caller_theirs(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers' requests open together in one transaction; one that fails is retried alone."""
    from app.services import timeline

    real_add = timeline.add

    def add(request, **kwargs):  # type: ignore[no-untyped-def]
        if "POISON" in request.question:
            raise RuntimeError("this one cannot be written")
        return real_add(request, **kwargs)

    monkeypatch.setattr(timeline, "add", add)
    questions = [f"Question {n} about parking?" for n in range(8)]
    questions[3] = "POISON question"
    async with running_app(make_settings(sqlite_url)) as client:
        bodies = [request_body(customer_name=f"Caller {n}", question=q) for n, q in enumerate(questions)]
        sent = await asyncio.gather(
            *(client.post("/api/help-requests", json=b) for b in bodies), return_exceptions=True
        )
        landed = [r for r in sent if isinstance(r, httpx.Response) and r.status_code == 201]
        assert sorted(r.json()["question"] for r in landed) == sorted(q for q in questions if "POISON" not in q)
        listed = (await client.get("/api/help-requests", params={"limit": 50})).json()
        assert len(listed) == 7


@pytest.mark.model
async def test_batches_joining_the_same_groups_in_opposite_orders_all_land(postgres_url: str) -> None:
    """Two processes open batches of requests joining the same groups, arriving in opposite orders:
    each batch locks the groups it joins in id order (repository.lock_requests), so every request
    lands in its group."""
    topics = ["balayage", "parking", "gift cards", "beard trims", "kids' cuts", "hair extensions"]
    questions = [f"Do you have anything for {t}?" for t in topics]
    async with AsyncExitStack() as stack:
        apps = [await stack.enter_async_context(running_app(make_settings(postgres_url))) for _ in range(2)]
        heads = {}
        for q in questions:
            heads[q] = (await apps[0].post("/api/help-requests", json=request_body(question=q))).json()["id"]
        await asyncio.sleep(1.2)  # the second instance learns of the first one's requests
        for _ in range(3):
            sent = await asyncio.gather(
                *(apps[0].post("/api/help-requests", json=request_body(question=q)) for q in questions),
                *(apps[1].post("/api/help-requests", json=request_body(question=q)) for q in reversed(questions)),
            )
            assert [r.status_code for r in sent] == [201] * len(sent), [r.text for r in sent if r.status_code != 201]
            assert all(r.json()["attached_to"] == heads[r.json()["question"]] for r in sent)
