"""Fans "this changed" notices out to live subscribers: the console's event stream (GET /api/events).

Notices carry only what changed (a help request or a KB entry, by id); readers fetch the current
state through the ordinary API, so a notice can never show something the API would not. A
subscriber too slow to keep up gets one `resync` in place of what it missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Notice:
    kind: str  # "help_request" | "knowledge_base" | "resync"
    id: str = ""


RESYNC = Notice("resync")


class ChangeFeed:
    def __init__(self, queue_size: int = 500) -> None:
        self.queue_size = queue_size
        self._subscribers: set[asyncio.Queue[Notice]] = set()
        # Carry this process's changes to other processes (services/live/relay.py).
        self.forwarders: list[Callable[[Notice], None]] = []

    def publish(self, kind: str, ident: str) -> None:
        """A change made here: to this process's subscribers and to the other processes."""
        change = Notice(kind, ident)
        self.deliver(change)
        for forward in self.forwarders:
            forward(change)

    def deliver(self, change: Notice) -> None:
        """To this process's subscribers only (changes relayed from elsewhere arrive here)."""
        for queue in self._subscribers:
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(RESYNC)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Notice]]:
        queue: asyncio.Queue[Notice] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
