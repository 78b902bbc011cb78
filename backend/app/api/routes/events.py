"""The live change stream (server-sent events) the console and the agent follow."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import AgentAllowed, ServicesDep

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
