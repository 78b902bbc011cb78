"""The live change stream (server-sent events) the console and the agent follow."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import AgentDep, ServicesDep, still_signed_in

router = APIRouter(prefix="/api")

# Sent first: tells clients how fast to reconnect after a server restart.
RECONNECT_MS = 1000
# How often (seconds, at most) a stream opened with a supervisor's token checks the token still works.
RECHECK_SECONDS = 1.0


@router.get("/events", tags=["live"], response_class=EventSourceResponse)
async def change_events(request: Request, svc: ServicesDep, who: AgentDep) -> EventSourceResponse:
    """Server-sent events: `help_request` or `knowledge_base` with `{"id"}` whenever one changes
    (fetch it through the API for its state), `resync` when the client must reload everything, and
    `ready` on connect. Pings every 15 s keep proxies from closing the stream. A stream opened with a
    supervisor's token that is revoked meanwhile ends before the next change."""

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async with svc.feed.subscribe() as queue:
            yield ServerSentEvent(event="ready", data="{}", retry=RECONNECT_MS)
            checked = time.monotonic()
            while True:
                change = await queue.get()
                if time.monotonic() - checked >= RECHECK_SECONDS:
                    if not await still_signed_in(request, who):
                        return
                    checked = time.monotonic()
                yield ServerSentEvent(event=change.kind, data=json.dumps({"id": change.id}))

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})
