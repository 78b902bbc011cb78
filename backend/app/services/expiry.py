"""Durable timeouts: sleep until the earliest stored deadline, or until woken by a new request."""
from __future__ import annotations

import asyncio
import logging

from app.services.help_requests import HelpRequestService

log = logging.getLogger(__name__)

# Another process sharing the database may create an earlier deadline than we know of.
MAX_SLEEP_SECONDS = 30.0
RETRY_AFTER_ERROR_SECONDS = 1.0


class ExpirySweeper:
    def __init__(self, service: HelpRequestService) -> None:
        self.service = service
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                expired = await self.service.expire_overdue()
                if expired:
                    log.info("timed out %d pending request(s): %s", len(expired), ", ".join(expired))
                deadline = await self.service.next_deadline()
            except Exception:
                log.exception("expiry sweep failed; retrying")
                await asyncio.sleep(RETRY_AFTER_ERROR_SECONDS)
                continue
            delay = MAX_SLEEP_SECONDS
            if deadline is not None:
                delay = min(delay, max(0.0, (deadline - self.service.clock()).total_seconds()) + 0.01)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass
