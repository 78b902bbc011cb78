"""The text a caller gets when their question goes to the team: once per request, with roughly how
long answers take these days, so they neither wait by the phone nor call again."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.models import HelpRequest
from app.phones import e164
from app.services import timeline
from app.services.outbox.events import EventType, Outbox
from app.services.sms import ANSWERED_BY_KB
from app.services.sms.reach import Unreachable, number_to_text

HISTORY = timedelta(days=7)
SAMPLES = 200  # the latest answers the estimate reads
MIN_SAMPLES = 3  # fewer say little about the next one
DEFAULT_MINUTES = 15
MAX_MINUTES = 60  # past an hour a promise is no use to the caller
STEP = 5
# The estimate moves slowly; reading it once a minute keeps a query off every escalation.
REFRESH_SECONDS = 60.0


def expected_minutes(waits: Sequence[float], *, limit: float) -> int:
    """Minutes to promise: the median of recent waits (in minutes) rounded up to a multiple of 5,
    between 5 and 60 (15 with too few answers to go by), and never past `limit`, when the request
    times out."""
    typical = statistics.median(waits) if len(waits) >= MIN_SAMPLES else DEFAULT_MINUTES
    minutes = min(MAX_MINUTES, max(STEP, STEP * math.ceil(typical / STEP)))
    return max(1, min(minutes, math.floor(limit)))


class Acknowledgements:
    def __init__(self, *, outbox: Outbox, region: str) -> None:
        self.outbox = outbox
        self.region = region
        self._waits: tuple[float, list[float]] | None = None

    async def acknowledge(self, *, session: AsyncSession, request: HelpRequest, now: datetime) -> None:
        """Inside the transaction that opens `request`. Not for a caller still on the line (the agent
        tells them), nor one who cannot be texted (the timeline says why), nor one already waiting
        on this question in the request's group (the second text would only repeat the first)."""
        if request.caller_on_line_until is not None and request.caller_on_line_until > now:
            return
        try:
            number = await number_to_text(session=session, contact=request.customer_contact, region=self.region)
        except Unreachable as why:
            timeline.add(request, at=now, kind="not_texted", actor="sms", message=str(why))
            return
        if request.attached_to is not None:
            for rid, contact in await repository.pending_group_contacts(session=session, root=request.attached_to):
                if rid != request.id and e164(contact, self.region) == number:
                    timeline.add(
                        request,
                        at=now,
                        kind="not_texted",
                        actor="sms",
                        message=f"No acknowledgement text: {number} is already waiting on request {rid}, "
                        "the same question",
                    )
                    return
        limit = (request.expires_at - now).total_seconds() / 60
        minutes = expected_minutes(await self._recent_waits(session, now), limit=limit)
        self.outbox.record(
            session=session, kind=EventType.ACKNOWLEDGED, request=request, now=now, expected_minutes=minutes
        )

    async def _recent_waits(self, session: AsyncSession, now: datetime) -> list[float]:
        if self._waits is None or time.monotonic() - self._waits[0] > REFRESH_SECONDS:
            rows = await repository.answer_waits(
                session=session, since=now - HISTORY, except_by=ANSWERED_BY_KB, limit=SAMPLES
            )
            waits = [(resolved - created).total_seconds() / 60 for created, resolved in rows]
            self._waits = (time.monotonic(), waits)
        return self._waits[1]
