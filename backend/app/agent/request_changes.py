"""Which help requests changed, from the backend's event stream (`GET /api/events`).

A call waiting for a supervisor asks the backend about its request only when the stream says the
request changed. The stream names the request and nothing more (the agent token gets no caller
data on it); the waiter reads its request itself. Every (re)connect wakes every waiter, since a
change made while the stream was down was missed; a dropped stream is reconnected with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.agent.backend_client import BackendClient

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 15.0


class RequestChanges:
    def __init__(self, backend: BackendClient) -> None:
        self._backend = backend
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, rid: str) -> asyncio.Event:
        """An event set whenever request `rid` may have changed; clear it before reading the request."""
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="help request changes")
        event = asyncio.Event()
        self._waiters.setdefault(rid, []).append(event)
        return event

    def wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    async def _follow(self) -> None:
        delay = RETRY_SECONDS
        while True:
            try:
                async with contextlib.aclosing(self._backend.changes()) as changes:
                    async for kind, data in changes:
                        if kind == "help_request":
                            for event in self._waiters.get(data.get("id"), ()):
                                event.set()
                        elif kind in ("ready", "resync"):
                            # Connected again, or the backend dropped notices for us: anything may have changed.
                            delay = RETRY_SECONDS
                            self.wake_all()
                log.info("the backend closed its event stream; reconnecting in %g s", delay)
            except Exception as exc:
                log.warning("the backend's event stream failed (%s); reconnecting in %g s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
