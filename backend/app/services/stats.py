"""The console's overview: what the KB spares supervisors, day by day (UTC days)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from app import repository
from app.db import Database
from app.enums import RequestStatus
from app.models import utcnow
from app.services.sms import ANSWERED_BY_KB
from app.services.views import DayStats


class Overview:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def daily(self, days: int) -> list[DayStats]:
        today = self.clock().astimezone(UTC).date()
        first = today - timedelta(days=days - 1)
        since = datetime.combine(first, time.min, tzinfo=UTC)
        async with self.db.read() as session:
            uses = await repository.kb_use_times(session=session, since=since)
            requests = await repository.requests_touched_since(session=session, since=since)

        kb_answers: dict[date, int] = defaultdict(int)
        escalations: dict[date, int] = defaultdict(int)
        waits: dict[date, list[float]] = defaultdict(list)
        timeouts: dict[date, int] = defaultdict(int)
        cannot: dict[date, int] = defaultdict(int)
        for at in uses:
            kb_answers[at.date()] += 1
        for created_at, resolved_at, status, answered_by in requests:
            if answered_by == ANSWERED_BY_KB:  # a texted question the KB answered: counted among `uses`
                continue
            if created_at >= since:
                escalations[created_at.date()] += 1
            if resolved_at is None or resolved_at < since:
                continue
            day = resolved_at.date()
            if status == RequestStatus.RESOLVED:
                waits[day].append((resolved_at - created_at).total_seconds() / 60)
            elif answered_by is None:
                timeouts[day] += 1
            else:
                cannot[day] += 1

        out = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            asked = kb_answers[day] + escalations[day]
            out.append(
                DayStats(
                    day=day,
                    kb_answers=kb_answers[day],
                    escalations=escalations[day],
                    answered_without_escalation=round(kb_answers[day] / asked, 3) if asked else None,
                    resolved=len(waits[day]),
                    median_minutes_to_answer=round(statistics.median(waits[day]), 1) if waits[day] else None,
                    timeouts=timeouts[day],
                    cannot_answer=cannot[day],
                )
            )
        return out
