"""The console's feeds: the change stream over a real server, and the daily overview."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from app.services.live.feed import ChangeFeed, Notice
from app.services.live.relay import PostgresChangeRelay
from tests.server_process import ServerProcess
from tests.support import make_settings, request_body, running_app


def _next_event(lines, kinds: set[str], timeout: float = 10) -> tuple[str, dict]:
    event, deadline = None, time.monotonic() + timeout
    for line in lines:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event in kinds:
            return event, json.loads(line.split(":", 1)[1])
        assert time.monotonic() < deadline, f"no {kinds} event within {timeout}s"
    raise AssertionError("stream ended")


@pytest.mark.slow
def test_change_stream_tells_of_requests_and_kb_entries(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, SUPERVISOR_TOKEN="sup", AGENT_TOKEN="agent").start()
    try:
        # The start-up output says where supervisors go.
        assert f"supervisor console: http://127.0.0.1:{server.port}/" in server.log.read_text()
        sup = httpx.Client(base_url=server.base, headers={"Authorization": "Bearer sup"}, timeout=10)
        assert httpx.get(server.base + "/api/events", timeout=5).status_code == 401
        # The agent's token opens the stream too (shared/CONTRACT.md).
        with httpx.stream(
            "GET", server.base + "/api/events", headers={"Authorization": "Bearer agent"}, timeout=10
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            _next_event(lines, {"ready"})
            rid = sup.post("/api/help-requests", json=request_body()).json()["id"]
            assert _next_event(lines, {"help_request"}) == ("help_request", {"id": rid})
            sup.post(f"/api/help-requests/{rid}/response", json={"answer": "Yes, from $220."})
            _, data = _next_event(lines, {"knowledge_base"})
            entry = sup.get(f"/api/knowledge-base/{data['id']}").json()
            assert entry["source_request_id"] == rid
    finally:
        server.stop()


async def test_daily_overview_counts_kb_answers_escalations_and_outcomes(client: httpx.AsyncClient) -> None:
    entry = (
        await client.post(
            "/api/knowledge-base", json={"question": "Do you sell gift cards?", "answer": "Yes, from $25."}
        )
    ).json()
    for _ in range(3):
        assert (await client.post(f"/api/knowledge-base/{entry['id']}/uses")).status_code == 204
    answered = (await client.post("/api/help-requests", json=request_body(question="Do you do perms?"))).json()
    await client.post(f"/api/help-requests/{answered['id']}/response", json={"answer": "Yes."})
    timed_out = (await client.post("/api/help-requests", json=request_body(question="Any parking?"))).json()
    await client.post(f"/api/help-requests/{timed_out['id']}/timeout")
    refused = (await client.post("/api/help-requests", json=request_body(question="Do you pierce ears?"))).json()
    await client.post(f"/api/help-requests/{refused['id']}/response", json={"unresolved": True})

    days = (await client.get("/api/stats/daily", params={"days": 3})).json()
    assert len(days) == 3 and days[0]["day"] < days[-1]["day"]
    today = days[-1]
    assert (today["kb_answers"], today["escalations"]) == (3, 3)
    assert today["answered_without_escalation"] == 0.5
    assert (today["resolved"], today["timeouts"], today["cannot_answer"]) == (1, 1, 1)
    assert today["median_minutes_to_answer"] is not None
    assert days[0]["answered_without_escalation"] is None

    for bad in ("0", "91", "x"):
        assert (await client.get("/api/stats/daily", params={"days": bad})).status_code == 422


async def test_console_page_is_public_and_locked_down(sqlite_url: str) -> None:
    async with running_app(make_settings(sqlite_url, supervisor_token="sup")) as client:
        page = await client.get("/")
        assert page.status_code == 200 and "Supervisor console" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        asset = await client.get("/console/console.js")
        assert asset.status_code == 200 and "content-security-policy" in asset.headers
        icon = await client.get("/favicon.ico")  # asked for by browsers on any page, /docs included
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert (await client.get("/api/help-requests")).status_code == 401


@pytest.mark.postgres
async def test_changes_made_through_one_process_reach_consoles_on_another(postgres_url: str) -> None:
    async with running_app(make_settings(postgres_url)) as first, running_app(make_settings(postgres_url)) as second:
        for client in (first, second):
            await client.app.state.change_relay.wait_connected(10)  # type: ignore[attr-defined]
        async with second.app.state.services.feed.subscribe() as queue:  # type: ignore[attr-defined]
            rid = (await first.post("/api/help-requests", json=request_body())).json()["id"]
            change = await asyncio.wait_for(queue.get(), 10)
            assert (change.kind, change.id) == ("help_request", rid)


@pytest.mark.postgres
async def test_relay_delivers_to_peers_once_and_never_echoes(postgres_url: str) -> None:
    feeds = [ChangeFeed(), ChangeFeed()]
    relays = [PostgresChangeRelay(postgres_url, feed) for feed in feeds]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        for relay in relays:
            await relay.wait_connected(10)
        async with feeds[0].subscribe() as mine, feeds[1].subscribe() as theirs:
            feeds[0].publish("help_request", "x")
            assert await asyncio.wait_for(mine.get(), 5) == Notice("help_request", "x")
            assert await asyncio.wait_for(theirs.get(), 5) == Notice("help_request", "x")
            feeds[1].publish("knowledge_base", "y")
            # Had "x" come back to its origin, it would be next in line here.
            assert await asyncio.wait_for(mine.get(), 5) == Notice("knowledge_base", "y")
            assert await asyncio.wait_for(theirs.get(), 5) == Notice("knowledge_base", "y")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
