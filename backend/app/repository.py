"""Persistence helpers. Every function takes a keyword-only session and leaves commit to the caller."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from app.enums import DeliveryStatus, ReminderStatus, RequestStatus
from app.models import (
    HealthProbe,
    HelpRequest,
    KnowledgeBaseChange,
    KnowledgeBaseEntry,
    KnowledgeBasePhrasing,
    KnowledgeBaseState,
    KnowledgeBaseUse,
    OutboxDelivery,
    OutboxEvent,
    Reminder,
    SmsInbound,
    SmsOptOut,
    Supervisor,
)


def _as_utc(value: datetime | str | None) -> datetime | None:
    """min() over a UTC column loses the column type: SQLite hands back its stored text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- help requests -------------------------------------------------------------------------


def _storable_id(ident: str) -> bool:
    # PostgreSQL refuses NUL in text: such an id cannot exist, and asking for it must not fail.
    return "\x00" not in ident


async def get_request(
    *, session: AsyncSession, rid: str, fresh: bool = False, lock: bool = False
) -> HelpRequest | None:
    """`lock`: FOR UPDATE (PostgreSQL), so changes to one request's call state apply one after the other."""
    if not _storable_id(rid):
        return None
    return await session.get(HelpRequest, rid, populate_existing=fresh or lock, with_for_update=lock or None)


async def lock_requests(*, session: AsyncSession, ids: Collection[str]) -> dict[str, HelpRequest]:
    """Requests by id, locked (FOR UPDATE on PostgreSQL) in id order: the order every transaction
    locks requests in, so two never wait on each other in a cycle."""
    wanted = sorted(i for i in set(ids) if _storable_id(i))
    if not wanted:
        return {}
    stmt = (
        select(HelpRequest)
        .where(HelpRequest.id.in_(wanted))
        .order_by(HelpRequest.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {req.id: req for req in (await session.scalars(stmt)).all()}


async def call_key_hash(*, session: AsyncSession, rid: str) -> str | None:
    """The stored hash of a request's call key ("" for requests from before call keys); None: no request."""
    if not _storable_id(rid):
        return None
    stmt = select(HelpRequest.call_key_hash).where(HelpRequest.id == rid)
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0] or "")


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


async def pending_heads_since(*, session: AsyncSession, since: datetime | None) -> Sequence[Any]:
    """Pending requests that head a group (attached to none), opened at or after `since`, with their
    question embeddings, oldest first."""
    stmt = select(HelpRequest.id, HelpRequest.question, HelpRequest.question_embedding, HelpRequest.created_at).where(
        HelpRequest.status == RequestStatus.PENDING, HelpRequest.attached_to.is_(None)
    )
    if since is not None:
        stmt = stmt.where(HelpRequest.created_at >= since)
    return (await session.execute(stmt.order_by(HelpRequest.created_at))).all()


async def pending_group_ids(*, session: AsyncSession, root: str) -> Sequence[str]:
    """Pending requests of a group: its head and those attached to it."""
    stmt = (
        select(HelpRequest.id)
        .where(
            HelpRequest.status == RequestStatus.PENDING, or_(HelpRequest.id == root, HelpRequest.attached_to == root)
        )
        .order_by(HelpRequest.created_at)
    )
    return (await session.scalars(stmt)).all()


async def lock_group(*, session: AsyncSession, rid: str) -> None:
    """Lock a request and every request of its group (FOR UPDATE on PostgreSQL), in id order: two
    answers to one group, or a group answer and the expiry sweeper, then never wait on each other
    in a cycle."""
    if not _storable_id(rid):
        return
    root = (
        await session.execute(select(HelpRequest.attached_to).where(HelpRequest.id == rid))
    ).scalar_one_or_none() or rid
    stmt = (
        select(HelpRequest.id)
        .where(or_(HelpRequest.id == root, HelpRequest.attached_to == root, HelpRequest.id == rid))
        .order_by(HelpRequest.id)
        .with_for_update()
    )
    await session.execute(stmt)


async def overdue_request_ids(*, session: AsyncSession, now: datetime) -> Sequence[str]:
    """In id order, the order every transaction locks requests in."""
    stmt = (
        select(HelpRequest.id)
        .where(HelpRequest.status == RequestStatus.PENDING, HelpRequest.expires_at <= now)
        .order_by(HelpRequest.id)
    )
    return (await session.scalars(stmt)).all()


async def next_deadline(*, session: AsyncSession) -> datetime | None:
    stmt = select(func.min(HelpRequest.expires_at)).where(HelpRequest.status == RequestStatus.PENDING)
    return _as_utc((await session.execute(stmt)).scalar_one_or_none())


async def touch_health_probe(*, session: AsyncSession, now: datetime) -> None:
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(HealthProbe).values(id=1, at=now)
    await session.execute(stmt.on_conflict_do_update(index_elements=[HealthProbe.id], set_={"at": now}))


# --- knowledge base ------------------------------------------------------------------------


async def list_entries(*, session: AsyncSession, include_retired: bool = False) -> Sequence[KnowledgeBaseEntry]:
    stmt = select(KnowledgeBaseEntry).order_by(KnowledgeBaseEntry.updated_at.desc(), KnowledgeBaseEntry.id)
    if not include_retired:
        stmt = stmt.where(KnowledgeBaseEntry.retired_at.is_(None))
    return (await session.scalars(stmt)).all()


async def get_entry(*, session: AsyncSession, entry_id: str, lock: bool = False) -> KnowledgeBaseEntry | None:
    """`lock`: FOR UPDATE (PostgreSQL), so concurrent edits of one entry apply one after the other."""
    if not _storable_id(entry_id):
        return None
    return await session.get(KnowledgeBaseEntry, entry_id, with_for_update=lock or None, populate_existing=lock)


async def active_entry_by_question(*, session: AsyncSession, normalized: str) -> KnowledgeBaseEntry | None:
    stmt = select(KnowledgeBaseEntry).where(
        KnowledgeBaseEntry.normalized_question == normalized, KnowledgeBaseEntry.retired_at.is_(None)
    )
    return (await session.scalars(stmt)).first()


async def active_entry_by_answer(*, session: AsyncSession, normalized: str) -> KnowledgeBaseEntry | None:
    stmt = (
        select(KnowledgeBaseEntry)
        .where(KnowledgeBaseEntry.normalized_answer == normalized, KnowledgeBaseEntry.retired_at.is_(None))
        .order_by(KnowledgeBaseEntry.created_at)
    )
    return (await session.scalars(stmt)).first()


async def phrasings_of(
    *, session: AsyncSession, entry_ids: Sequence[str], embeddings: bool = False
) -> dict[str, list[KnowledgeBasePhrasing]]:
    """Each entry's phrasings, oldest first (with their embeddings for the search index)."""
    found: dict[str, list[KnowledgeBasePhrasing]] = {}
    for start in range(0, len(entry_ids), 500):  # keep under SQLite's bound-parameter limit
        stmt = (
            select(KnowledgeBasePhrasing)
            .where(KnowledgeBasePhrasing.entry_id.in_(entry_ids[start : start + 500]))
            .order_by(KnowledgeBasePhrasing.created_at, KnowledgeBasePhrasing.id)
        )
        if embeddings:
            stmt = stmt.options(undefer(KnowledgeBasePhrasing.embedding))
        for phrasing in (await session.scalars(stmt)).all():
            found.setdefault(phrasing.entry_id, []).append(phrasing)
    return found


async def phrasing_owner(*, session: AsyncSession, normalized: str) -> KnowledgeBasePhrasing | None:
    """The phrasing with this normalized text on an active entry, if any."""
    stmt = (
        select(KnowledgeBasePhrasing)
        .join(KnowledgeBaseEntry, KnowledgeBaseEntry.id == KnowledgeBasePhrasing.entry_id)
        .where(KnowledgeBasePhrasing.normalized == normalized, KnowledgeBaseEntry.retired_at.is_(None))
    )
    return (await session.scalars(stmt)).first()


async def count_entries(*, session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(KnowledgeBaseEntry)
    return (await session.execute(stmt)).scalar_one()


async def bump_kb_revision(*, session: AsyncSession) -> int:
    """Take the next KB revision; the row lock it takes orders concurrent KB writers until commit."""
    stmt = (
        update(KnowledgeBaseState)
        .where(KnowledgeBaseState.id == 1)
        .values(revision=KnowledgeBaseState.revision + 1)
        .returning(KnowledgeBaseState.revision)
    )
    return (await session.execute(stmt)).scalar_one()


async def kb_revision(*, session: AsyncSession) -> int:
    stmt = select(KnowledgeBaseState.revision).where(KnowledgeBaseState.id == 1)
    return (await session.execute(stmt)).scalar_one()


async def kb_entries_since(*, session: AsyncSession, revision: int) -> Sequence[KnowledgeBaseEntry]:
    """Entries written after `revision`, embeddings loaded (for the search index)."""
    stmt = (
        select(KnowledgeBaseEntry)
        .where(KnowledgeBaseEntry.revision > revision)
        .options(undefer(KnowledgeBaseEntry.question_embedding), undefer(KnowledgeBaseEntry.qa_embedding))
    )
    return (await session.scalars(stmt)).all()


async def without_embeddings(
    *, session: AsyncSession, table: type[KnowledgeBaseEntry] | type[KnowledgeBasePhrasing], model: str, limit: int
) -> Sequence[Any]:
    """Entries or phrasings embedded by another model than `model`, or not at all."""
    stmt = (
        select(table)
        .where(or_(table.embedding_model.is_(None), table.embedding_model != model))
        .order_by(table.id)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def upsert_entry(*, session: AsyncSession, values: dict[str, Any]) -> tuple[KnowledgeBaseEntry, bool]:
    """Insert an entry, or update the active one with the same normalized question; True if inserted.

    Done as one INSERT .. ON CONFLICT so two answers to the same question racing on PostgreSQL
    cannot both insert."""
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(KnowledgeBaseEntry).values(**values)
    keep = {"id", "normalized_question", "created_at", "times_used", "last_used_at", "retired_at"}
    stmt = stmt.on_conflict_do_update(
        index_elements=[KnowledgeBaseEntry.normalized_question],
        index_where=text("retired_at IS NULL"),
        set_={name: stmt.excluded[name] for name in values if name not in keep},
    ).returning(KnowledgeBaseEntry.id)
    entry_id = (await session.execute(stmt)).scalar_one()
    entry = await session.get(KnowledgeBaseEntry, entry_id, populate_existing=True)
    assert entry is not None
    return entry, entry_id == values["id"]


def add_kb_change(
    *,
    session: AsyncSession,
    entry: KnowledgeBaseEntry,
    at: datetime,
    action: str,
    actor: str,
    phrasing: str | None = None,
    source_request_id: str | None = None,
) -> None:
    session.add(
        KnowledgeBaseChange(
            entry_id=entry.id,
            at=at,
            action=action,
            actor=actor,
            question=entry.question,
            answer=entry.answer,
            topic=entry.topic,
            source_request_id=source_request_id or entry.source_request_id,
            phrasing=phrasing,
        )
    )


async def kb_changes(*, session: AsyncSession, entry_id: str) -> Sequence[KnowledgeBaseChange]:
    stmt = select(KnowledgeBaseChange).where(KnowledgeBaseChange.entry_id == entry_id).order_by(KnowledgeBaseChange.id)
    return (await session.scalars(stmt)).all()


async def record_entry_use(*, session: AsyncSession, entry_id: str, now: datetime, revision: int) -> bool:
    if not _storable_id(entry_id):
        return False
    stmt = (
        update(KnowledgeBaseEntry)
        .where(KnowledgeBaseEntry.id == entry_id, KnowledgeBaseEntry.retired_at.is_(None))
        .values(times_used=KnowledgeBaseEntry.times_used + 1, last_used_at=now, revision=revision)
        .execution_options(synchronize_session=False)
    )
    if (await session.execute(stmt)).rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(KnowledgeBaseUse(entry_id=entry_id, at=now))
    return True


async def kb_use_times(*, session: AsyncSession, since: datetime) -> Sequence[datetime]:
    stmt = select(KnowledgeBaseUse.at).where(KnowledgeBaseUse.at >= since)
    return (await session.scalars(stmt)).all()


async def requests_touched_since(*, session: AsyncSession, since: datetime) -> Sequence[Any]:
    """(created_at, resolved_at, status, answered_by) of requests created or closed since `since`."""
    stmt = select(HelpRequest.created_at, HelpRequest.resolved_at, HelpRequest.status, HelpRequest.answered_by).where(
        or_(HelpRequest.created_at >= since, HelpRequest.resolved_at >= since)
    )
    return (await session.execute(stmt)).all()


# --- supervisors ---------------------------------------------------------------------------


async def supervisor_by_selector(*, session: AsyncSession, selector: str) -> Supervisor | None:
    stmt = select(Supervisor).where(Supervisor.token_selector == selector)
    return (await session.scalars(stmt)).first()


async def get_supervisor(*, session: AsyncSession, supervisor_id: str) -> Supervisor | None:
    if not _storable_id(supervisor_id) or len(supervisor_id) > 36:
        return None
    return await session.get(Supervisor, supervisor_id)


async def active_supervisor_by_name(*, session: AsyncSession, name_key: str) -> Supervisor | None:
    stmt = select(Supervisor).where(Supervisor.name_key == name_key, Supervisor.revoked_at.is_(None))
    return (await session.scalars(stmt)).first()


async def list_supervisors(*, session: AsyncSession) -> Sequence[Supervisor]:
    stmt = select(Supervisor).order_by(Supervisor.created_at, Supervisor.id)
    return (await session.scalars(stmt)).all()


async def any_supervisor(*, session: AsyncSession) -> bool:
    return (await session.execute(select(Supervisor.id).limit(1))).first() is not None


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


async def latest_customer_event(*, session: AsyncSession, rid: str) -> OutboxEvent | None:
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.request_id == rid, OutboxEvent.recipient == "customer")
        .order_by(OutboxEvent.created_at.desc(), OutboxEvent.id)
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


def _untouched(now: datetime) -> Any:
    """Deliveries no deliverer has tried or holds right now: still safe to take back or move."""
    return (
        (OutboxDelivery.status == DeliveryStatus.PENDING)
        & (OutboxDelivery.attempts == 0)
        & or_(OutboxDelivery.locked_until.is_(None), OutboxDelivery.locked_until <= now)
    )


async def take_back_deliveries(*, session: AsyncSession, event_id: str, now: datetime) -> int:
    """Mark an event's untried deliveries as said in the call; returns how many were taken."""
    stmt = (
        update(OutboxDelivery)
        .where(OutboxDelivery.event_id == event_id, _untouched(now))
        .values(status=DeliveryStatus.SAID_IN_CALL, delivered_at=now)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).rowcount  # type: ignore[attr-defined]


async def give_back_deliveries(*, session: AsyncSession, event_id: str, now: datetime) -> int:
    """Undo a take-back the caller never heard: the deliveries are due again, now."""
    stmt = (
        update(OutboxDelivery)
        .where(OutboxDelivery.event_id == event_id, OutboxDelivery.status == DeliveryStatus.SAID_IN_CALL)
        .values(status=DeliveryStatus.PENDING, next_attempt_at=now, delivered_at=None)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).rowcount  # type: ignore[attr-defined]


async def release_held_deliveries(*, session: AsyncSession, rid: str, now: datetime) -> int:
    """Make a request's held customer follow-ups due now; returns how many were waiting."""
    customer_events = select(OutboxEvent.id).where(OutboxEvent.request_id == rid, OutboxEvent.recipient == "customer")
    stmt = (
        update(OutboxDelivery)
        .where(OutboxDelivery.event_id.in_(customer_events), OutboxDelivery.next_attempt_at > now, _untouched(now))
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).rowcount  # type: ignore[attr-defined]


# --- reminders -----------------------------------------------------------------------------


async def claim_due_reminder(*, session: AsyncSession, now: datetime) -> Reminder | None:
    """Lock the earliest due pending reminder for this transaction. SKIP LOCKED sends two API
    processes on one PostgreSQL to different rows; SQLite's one writer at a time does that there."""
    stmt = (
        select(Reminder)
        .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(stmt)).first()


async def next_reminder_at(*, session: AsyncSession) -> datetime | None:
    stmt = select(func.min(Reminder.due_at)).where(Reminder.status == ReminderStatus.PENDING)
    return _as_utc((await session.execute(stmt)).scalar_one_or_none())


# --- sms -----------------------------------------------------------------------------------


async def sms_opted_out(*, session: AsyncSession, number: str) -> bool:
    return await session.get(SmsOptOut, number) is not None


async def opt_out_of_sms(*, session: AsyncSession, number: str, keyword: str, now: datetime) -> None:
    """A second STOP changes nothing: the first one's word and time stay."""
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(SmsOptOut).values(number=number, keyword=keyword, at=now)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=[SmsOptOut.number]))


async def opt_in_to_sms(*, session: AsyncSession, number: str) -> bool:
    """True if the number had opted out."""
    result = await session.execute(delete(SmsOptOut).where(SmsOptOut.number == number))
    return result.rowcount == 1  # type: ignore[attr-defined]


async def sms_inbound_seen(*, session: AsyncSession, message_sid: str) -> bool:
    return await session.get(SmsInbound, message_sid) is not None


async def requests_by_contact_digits(
    *, session: AsyncSession, digits: str, since: datetime, limit: int = 20
) -> Sequence[Any]:
    """(id, customer_name, customer_contact, status) of pending requests, and of those opened or
    closed since `since`, whose contact holds `digits` once spaces, dashes, dots and brackets are
    taken out; newest first. A coarse filter: the caller parses each contact to be sure."""
    contact: Any = HelpRequest.customer_contact
    for mark in " -().":
        contact = func.replace(contact, mark, "")
    stmt = (
        select(HelpRequest.id, HelpRequest.customer_name, HelpRequest.customer_contact, HelpRequest.status)
        .where(
            contact.contains(digits, autoescape=True),
            or_(
                HelpRequest.status == RequestStatus.PENDING,
                HelpRequest.created_at >= since,
                HelpRequest.resolved_at >= since,
            ),
        )
        .order_by(HelpRequest.created_at.desc(), HelpRequest.id)
        .limit(limit)
    )
    return (await session.execute(stmt)).all()


async def pending_group_contacts(*, session: AsyncSession, root: str) -> Sequence[Any]:
    """(id, customer_contact) of a group's pending requests: its head and those attached to it."""
    stmt = select(HelpRequest.id, HelpRequest.customer_contact).where(
        HelpRequest.status == RequestStatus.PENDING, or_(HelpRequest.id == root, HelpRequest.attached_to == root)
    )
    return (await session.execute(stmt)).all()


async def answer_waits(*, session: AsyncSession, since: datetime, except_by: str, limit: int) -> Sequence[Any]:
    """(created_at, resolved_at) of the latest requests answered since `since` by anyone but
    `except_by`, newest first."""
    stmt = (
        select(HelpRequest.created_at, HelpRequest.resolved_at)
        .where(
            HelpRequest.status == RequestStatus.RESOLVED,
            HelpRequest.resolved_at >= since,
            or_(HelpRequest.answered_by.is_(None), HelpRequest.answered_by != except_by),
        )
        .order_by(HelpRequest.resolved_at.desc())
        .limit(limit)
    )
    return (await session.execute(stmt)).all()
