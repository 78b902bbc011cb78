"""Persistence helpers. Every function takes a keyword-only session and leaves commit to the caller."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    DeliveryStatus,
    HelpRequest,
    KnowledgeBaseEntry,
    OutboxDelivery,
    OutboxEvent,
    RequestEvent,
    RequestStatus,
)

def _as_utc(value: datetime | str | None) -> datetime | None:
    """min() over a UTC column loses the column type: SQLite hands back its stored text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


# --- help requests -------------------------------------------------------------------------


async def get_request(*, session: AsyncSession, rid: str, fresh: bool = False) -> HelpRequest | None:
    return await session.get(HelpRequest, rid, populate_existing=fresh)


async def list_requests(
    *, session: AsyncSession, status: RequestStatus | None, limit: int, offset: int
) -> Sequence[HelpRequest]:
    stmt = select(HelpRequest).order_by(HelpRequest.created_at.desc(), HelpRequest.id).limit(limit).offset(offset)
    if status is not None:
        stmt = stmt.where(HelpRequest.status == status)
    return (await session.scalars(stmt)).all()


async def leave_pending(
    *, session: AsyncSession, rid: str, status: RequestStatus, now: datetime, **values: Any
) -> bool:
    """Compare-and-set out of `pending`: True for exactly one caller, whatever the concurrency."""
    stmt = (
        update(HelpRequest)
        .where(HelpRequest.id == rid, HelpRequest.status == RequestStatus.PENDING)
        .values(status=status, updated_at=now, resolved_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return result.rowcount == 1  # type: ignore[attr-defined]


async def overdue_request_ids(*, session: AsyncSession, now: datetime) -> Sequence[str]:
    stmt = select(HelpRequest.id).where(
        HelpRequest.status == RequestStatus.PENDING, HelpRequest.expires_at <= now
    )
    return (await session.scalars(stmt)).all()


async def next_deadline(*, session: AsyncSession) -> datetime | None:
    stmt = select(func.min(HelpRequest.expires_at)).where(HelpRequest.status == RequestStatus.PENDING)
    return _as_utc((await session.execute(stmt)).scalar_one_or_none())


def add_timeline(*, request: HelpRequest, at: datetime, kind: str, actor: str, message: str) -> None:
    # Through the relationship, so a snapshot taken in the same transaction already shows it.
    request.events.append(RequestEvent(at=at, kind=kind, actor=actor, message=message))


# --- knowledge base ------------------------------------------------------------------------


async def list_entries(*, session: AsyncSession) -> Sequence[KnowledgeBaseEntry]:
    stmt = (
        select(KnowledgeBaseEntry)
        .where(KnowledgeBaseEntry.retired_at.is_(None))
        .order_by(KnowledgeBaseEntry.updated_at.desc(), KnowledgeBaseEntry.id)
    )
    return (await session.scalars(stmt)).all()


async def count_entries(*, session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(KnowledgeBaseEntry)
    return (await session.execute(stmt)).scalar_one()


async def upsert_entry(*, session: AsyncSession, values: dict[str, Any]) -> KnowledgeBaseEntry:
    """Insert an entry, or update the active one with the same normalized question.

    Done as one INSERT .. ON CONFLICT so two answers to the same question racing on PostgreSQL
    cannot both insert."""
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(KnowledgeBaseEntry).values(**values)
    updatable = ("question", "answer", "topic", "source_request_id", "updated_at")
    stmt = stmt.on_conflict_do_update(
        index_elements=[KnowledgeBaseEntry.normalized_question],
        index_where=text("retired_at IS NULL"),
        set_={name: stmt.excluded[name] for name in updatable if name in values},
    ).returning(KnowledgeBaseEntry.id)
    entry_id = (await session.execute(stmt)).scalar_one()
    entry = await session.get(KnowledgeBaseEntry, entry_id, populate_existing=True)
    assert entry is not None
    return entry


# --- outbox --------------------------------------------------------------------------------


def add_outbox_event(*, session: AsyncSession, event: OutboxEvent, sinks: Sequence[str]) -> None:
    session.add(event)
    for sink in sinks:
        session.add(OutboxDelivery(event=event, sink=sink, next_attempt_at=event.created_at))


async def claim_deliveries(
    *, session: AsyncSession, sink: str, now: datetime, lease_until: datetime, limit: int
) -> Sequence[OutboxDelivery]:
    """Lease due deliveries of one sink. SKIP LOCKED keeps two deliverers (two API processes on one
    PostgreSQL) off the same rows; SQLite runs one process, so plain selection is enough there."""
    stmt = (
        select(OutboxDelivery)
        .where(
            OutboxDelivery.sink == sink,
            OutboxDelivery.status == DeliveryStatus.PENDING,
            OutboxDelivery.next_attempt_at <= now,
            or_(OutboxDelivery.locked_until.is_(None), OutboxDelivery.locked_until <= now),
        )
        .order_by(OutboxDelivery.next_attempt_at, OutboxDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxDelivery)
    )
    rows = (await session.scalars(stmt)).unique().all()
    for row in rows:
        row.locked_until = lease_until
        row.attempts += 1
    return rows


async def next_delivery_at(*, session: AsyncSession, sink: str, now: datetime) -> datetime | None:
    """The earliest retry time among unleased pending deliveries of `sink`."""
    stmt = select(func.min(OutboxDelivery.next_attempt_at)).where(
        OutboxDelivery.sink == sink,
        OutboxDelivery.status == DeliveryStatus.PENDING,
        or_(OutboxDelivery.locked_until.is_(None), OutboxDelivery.locked_until <= now),
    )
    return _as_utc((await session.execute(stmt)).scalar_one_or_none())


async def get_delivery(*, session: AsyncSession, delivery_id: int) -> OutboxDelivery | None:
    return await session.get(OutboxDelivery, delivery_id, with_for_update=True)


async def list_deliveries(
    *, session: AsyncSession, status: DeliveryStatus | None, limit: int
) -> Sequence[OutboxDelivery]:
    stmt = select(OutboxDelivery).order_by(OutboxDelivery.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(OutboxDelivery.status == status)
    return (await session.scalars(stmt)).unique().all()


async def count_deliveries(*, session: AsyncSession) -> dict[str, int]:
    stmt = select(OutboxDelivery.status, func.count()).group_by(OutboxDelivery.status)
    return {status: n for status, n in (await session.execute(stmt)).all()}
