"""The outbox as supervisors see it: deliveries by status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ServicesDep, SupervisorOnly
from app.enums import DeliveryStatus
from app.services.views import (
    DeliveryView,
)

router = APIRouter(prefix="/api")


@router.get("/notifications", response_model=list[DeliveryView], dependencies=SupervisorOnly, tags=["notifications"])
async def list_notifications(
    svc: ServicesDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryView]:
    """Notification deliveries, newest first; `status=dead` lists the ones that were given up on."""
    return await svc.outbox.deliveries(status=status, limit=limit)
