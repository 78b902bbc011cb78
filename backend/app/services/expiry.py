"""Durable timeouts: sleep until the earliest stored deadline, or until woken by a new request."""
from __future__ import annotations

import logging

from app.services.help_requests import HelpRequestService
from app.services.loops import WakeableLoop, seconds_until

log = logging.getLogger(__name__)


class ExpirySweeper(WakeableLoop):
    def __init__(self, service: HelpRequestService) -> None:
        super().__init__()
        self.service = service

    async def step(self) -> float | None:
        expired = await self.service.expire_overdue()
        if expired:
            log.info("timed out %d pending request(s): %s", len(expired), ", ".join(expired))
        return seconds_until(await self.service.next_deadline(), self.service.clock())
