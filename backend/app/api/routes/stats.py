"""The console's daily overview."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ServicesDep, SupervisorOnly
from app.services.views import DayStats

router = APIRouter(prefix="/api")


@router.get("/stats/daily", response_model=list[DayStats], dependencies=SupervisorOnly, tags=["live"])
async def daily_stats(svc: ServicesDep, days: Annotated[int, Query(ge=1, le=90)] = 14) -> list[DayStats]:
    """Per UTC day, oldest first: questions the KB answered vs escalated, time to answer, timeouts."""
    return await svc.overview.daily(days)
