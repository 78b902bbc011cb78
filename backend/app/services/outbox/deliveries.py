"""What supervisors see of the outbox: deliveries by status, the dead ones above all."""

from __future__ import annotations

from app import repository
from app.db import Database
from app.enums import DeliveryStatus
from app.services.views import DeliveryView


class OutboxView:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def deliveries(self, *, status: DeliveryStatus | None, limit: int) -> list[DeliveryView]:
        async with self.db.read() as session:
            rows = await repository.list_deliveries(session=session, status=status, limit=limit)
            return [
                DeliveryView(
                    event_id=d.event.id,
                    type=d.event.type,
                    recipient=d.event.recipient,
                    request_id=d.event.request_id,
                    message=d.event.message,
                    sink=d.sink,
                    status=d.status,
                    attempts=d.attempts,
                    last_error=d.last_error,
                    created_at=d.event.created_at,
                    next_attempt_at=d.next_attempt_at,
                    delivered_at=d.delivered_at,
                )
                for d in rows
            ]
