"""Durable timeouts driven by `expires_at`: no outside call, and across a stop of the app."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.support import eventually, make_settings, request_body, running_app


async def test_pending_request_times_out_by_itself(database_url: str) -> None:
    settings = make_settings(database_url, request_timeout_seconds=1)
    async with running_app(settings) as client:
        req = (await client.post("/api/help-requests", json=request_body())).json()

        async def status() -> str | None:
            body = (await client.get(f"/api/help-requests/{req['id']}")).json()
            return body if body["status"] == "unresolved" else None

        body = await eventually(status, timeout=3)
        assert body["answer"] is None
        assert any("Timed out with no answer" in item["message"] for item in body["history"])
        notifications = (await client.get("/api/notifications")).json()
        assert any(n["type"] == "help_request.unresolved" and n["request_id"] == req["id"] for n in notifications)


async def test_answered_request_does_not_time_out(database_url: str) -> None:
    # Long enough for the answer to come first on a loaded machine (it embeds the new KB entry).
    async with running_app(make_settings(database_url, request_timeout_seconds=3)) as client:
        req = (await client.post("/api/help-requests", json=request_body())).json()
        answered = await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Yes."})
        assert answered.status_code == 200, answered.text
        deadline = datetime.fromisoformat(req["expires_at"])
        await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 1)
        assert (await client.get(f"/api/help-requests/{req['id']}")).json()["status"] == "resolved"


async def test_each_request_times_out_at_its_own_deadline(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url, request_timeout_seconds=1.5)) as client:
        early = (await client.post("/api/help-requests", json=request_body(question="Early?"))).json()
        await asyncio.sleep(0.8)
        late = (await client.post("/api/help-requests", json=request_body(question="Late?"))).json()

        async def early_done() -> bool:
            return (await client.get(f"/api/help-requests/{early['id']}")).json()["status"] == "unresolved"

        await eventually(early_done, timeout=2.5)
        assert (await client.get(f"/api/help-requests/{late['id']}")).json()["status"] == "pending"


async def test_deadline_that_passed_while_the_app_was_stopped(database_url: str) -> None:
    settings = make_settings(database_url, request_timeout_seconds=1.5)
    async with running_app(settings) as client:
        req = (await client.post("/api/help-requests", json=request_body())).json()
        assert (await client.get(f"/api/help-requests/{req['id']}")).json()["status"] == "pending"
    await asyncio.sleep(2)  # the deadline passes while nothing runs

    async with running_app(settings) as client:

        async def unresolved() -> bool:
            return (await client.get(f"/api/help-requests/{req['id']}")).json()["status"] == "unresolved"

        await eventually(unresolved, timeout=2)
