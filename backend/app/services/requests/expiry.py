"""Durable timeouts: sleep until the earliest stored deadline, or until woken by a new request."""

from __future__ import annotations

import logging
from datetime import datetime

from app.services.changes import Change, Changes
from app.services.loops import WakeableLoop, seconds_until
from app.services.outbox.events import EventType
from app.services.requests.lifecycle import HelpRequestService

log = logging.getLogger(__name__)


class ExpirySweeper(WakeableLoop):
    def __init__(self, service: HelpRequestService, changes: Changes) -> None:
        super().__init__()
        self.service = service
        self.due: datetime | None = None  # the deadline it sleeps towards; None: no request pending
        changes.subscribe(self._changed)

    def _changed(self, change: Change) -> None:
        """Every request gets the same timeout, so a new deadline is never earlier than the one the
        sweeper sleeps towards: only an idle sweeper needs waking (each wake costs a query)."""
        if change.event == EventType.CREATED and self.due is None:
            self.wake()

    async def step(self) -> float | None:
        expired = await self.service.expire_overdue()
        if expired:
            log.info("timed out %d pending request(s): %s", len(expired), ", ".join(expired))
        self.due = await self.service.next_deadline()
        return seconds_until(self.due, self.service.clock())
