"""The console's live feeds: the change stream (server-sent events) and the daily overview."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import AgentAllowed, ServicesDep, SupervisorOnly
from app.services.stats import DayStats

router = APIRouter(prefix="/api")

# Sent first: tells clients how fast to reconnect after a server restart.
RECONNECT_MS = 1000


@router.get("/events", dependencies=AgentAllowed, tags=["live"], response_class=EventSourceResponse)
async def change_events(svc: ServicesDep) -> EventSourceResponse:
    """Server-sent events: `help_request` or `knowledge_base` with `{"id"}` whenever one changes
    (fetch it through the API for its state), `resync` when the client must reload everything, and
    `ready` on connect. Pings every 15 s keep proxies from closing the stream."""

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async with svc.feed.subscribe() as queue:
            yield ServerSentEvent(event="ready", data="{}", retry=RECONNECT_MS)
            while True:
                change = await queue.get()
                yield ServerSentEvent(event=change.kind, data=json.dumps({"id": change.id}))

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


@router.get("/stats/daily", response_model=list[DayStats], dependencies=SupervisorOnly, tags=["live"])
async def daily_stats(svc: ServicesDep, days: Annotated[int, Query(ge=1, le=90)] = 14) -> list[DayStats]:
    """Per UTC day, oldest first: questions the KB answered vs escalated, time to answer, timeouts."""
    return await svc.overview.daily(days)
