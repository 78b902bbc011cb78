"""Tables (the enums that name their states: app.enums)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from app.enums import DeliveryStatus, ReminderStatus, RequestStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC so SQLite compares stored values as text correctly; read back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class HelpRequest(Base):
    __tablename__ = "help_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    customer_name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=RequestStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    escalated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    customer_contact: Mapped[str | None] = mapped_column(String(200), nullable=True)
    transcript: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # Lease renewed by the voice agent while the caller is still in the call (services/requests/follow_up.py).
    caller_on_line_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # SHA-256 of the call key handed to whoever opened the request: with the agent token, changing the
    # request (or reading its caller's data) takes that key, so a leaked agent token reaches no call.
    call_key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, deferred=True)
    # Another caller's pending request with the same question: one answer resolves both.
    attached_to: Mapped[str | None] = mapped_column(
        ForeignKey("help_requests.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # float32 sentence embedding of `question`, for finding pending duplicates.
    question_embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)

    events: Mapped[list[RequestEvent]] = relationship(
        back_populates="request", order_by="RequestEvent.id", lazy="selectin", cascade="all, delete-orphan"
    )
    responses: Mapped[list[SupervisorResponse]] = relationship(
        back_populates="request", order_by="SupervisorResponse.created_at", lazy="selectin"
    )
    attachments: Mapped[list[HelpRequest]] = relationship(
        foreign_keys=[attached_to], order_by="HelpRequest.created_at", lazy="selectin", join_depth=1
    )

    __table_args__ = (
        Index("ix_help_requests_status_expires", "status", "expires_at"),
        Index("ix_help_requests_created", "created_at"),
    )


class RequestEvent(Base):
    """One line of a request's timeline: who did what, when, in plain words."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("help_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)

    request: Mapped[HelpRequest] = relationship(back_populates="events")


class SupervisorResponse(Base):
    __tablename__ = "supervisor_responses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("help_requests.id", ondelete="CASCADE"), index=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    topic: Mapped[str | None] = mapped_column(String(100), nullable=True)
    unresolved: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    responder: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    request: Mapped[HelpRequest] = relationship(back_populates="responses")


class Supervisor(Base):
    """A named supervisor account (services/supervisors.py). Revoked, never deleted: timelines and the
    KB's audit trail name them, and an account once made keeps auth on."""

    __tablename__ = "supervisors"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    # The name folded for "is this name taken?" (case and spacing ignored).
    name_key: Mapped[str] = mapped_column(String(100))
    # The token is "<selector>.<secret>": the selector finds the row, the SHA-256 of the whole token
    # is then compared in constant time.
    token_selector: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("uq_supervisors_selector", "token_selector", unique=True),
        Index(
            "uq_supervisors_active_name",
            "name_key",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )


class KnowledgeBaseEntry(Base):
    __tablename__ = "knowledge_base_entries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    question: Mapped[str] = mapped_column(Text)
    # The question folded for "is this the same question?" checks (case, spacing, punctuation).
    normalized_question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    # The answer folded the same way: a supervisor giving the same answer again adds a phrasing.
    normalized_answer: Mapped[str] = mapped_column(Text, index=True)
    topic: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source_request_id: Mapped[str | None] = mapped_column(
        ForeignKey("help_requests.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    times_used: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # float32 sentence embeddings of the question, and of question + answer; written with the entry.
    question_embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    qa_embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    embedding_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # KnowledgeBaseState.revision at this entry's last write: search indexes catch up by it.
    revision: Mapped[int] = mapped_column(Integer, default=0, index=True)

    __table_args__ = (
        Index(
            "uq_kb_active_question",
            "normalized_question",
            unique=True,
            sqlite_where=text("retired_at IS NULL"),
            postgresql_where=text("retired_at IS NULL"),
        ),
        Index("ix_kb_updated", "updated_at"),
    )


class HealthProbe(Base):
    """One row `/health` rewrites: a database that cannot take writes (disk full) is not healthy."""

    __tablename__ = "health_probe"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class KnowledgeBasePhrasing(Base):
    """Another way callers asked an entry's question, learned when a supervisor answered a request
    with that entry (or gave its answer again): the next caller who says it so gets the answer."""

    __tablename__ = "knowledge_base_phrasings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    entry_id: Mapped[str] = mapped_column(ForeignKey("knowledge_base_entries.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text, index=True)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    embedding_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_request_id: Mapped[str | None] = mapped_column(
        ForeignKey("help_requests.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))


class KnowledgeBaseUse(Base):
    """One answer the agent said from the KB: the console's "answered without escalation" per day."""

    __tablename__ = "knowledge_base_uses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("knowledge_base_entries.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class KnowledgeBaseState(Base):
    """One row. Every KB write bumps `revision` in its transaction; the row lock orders the writers,
    so an index that has seen revision R has seen every entry written up to R."""

    __tablename__ = "knowledge_base_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class KnowledgeBaseChange(Base):
    """The audit trail of KB entries: who created, learned, edited or retired what, when, and which
    phrasings were added or removed (`phrasing`)."""

    __tablename__ = "knowledge_base_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("knowledge_base_entries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source_request_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    phrasing: Mapped[str | None] = mapped_column(Text, nullable=True)


class OutboxEvent(Base):
    """A notification written in the same transaction as the change it reports.

    `body` is the exact JSON sent to webhooks, fixed at write time so every retry is byte-identical
    (and so is its signature)."""

    __tablename__ = "outbox_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(
        ForeignKey("help_requests.id", ondelete="SET NULL"), nullable=True, index=True
    )
    message: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    deliveries: Mapped[list[OutboxDelivery]] = relationship(back_populates="event", lazy="selectin")


class OutboxDelivery(Base):
    """One event to one sink: sinks retry independently, so a failing one holds up no other."""

    __tablename__ = "outbox_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"))
    sink: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A claim is a lease: a deliverer that dies mid-send loses it when this passes.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    event: Mapped[OutboxEvent] = relationship(back_populates="deliveries", lazy="joined", innerjoin=True)

    __table_args__ = (
        UniqueConstraint("event_id", "sink", name="uq_delivery_event_sink"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )


class Reminder(Base):
    """A reminder to supervisors, due at `due_at`: stored, not timed in memory, so a restart loses
    none; claimed once, in the transaction that writes its outbox event (services/requests/reminders.py)."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("help_requests.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=ReminderStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # A request leaves pending once, so it can never need two reminders of one kind.
        UniqueConstraint("request_id", "kind", name="uq_reminder_request_kind"),
        Index("ix_reminders_due", "status", "due_at"),
    )


class SmsOptOut(Base):
    """A number that texted STOP (or a synonym): nothing is texted to it until it texts START."""

    __tablename__ = "sms_opt_outs"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    keyword: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class SmsInbound(Base):
    """A text a caller sent us, by Twilio's message SID: one delivered twice is handled once."""

    __tablename__ = "sms_inbound"

    message_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[str] = mapped_column(String(20), index=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What became of it (services/sms/inbound.py: Outcome) and the request it went to, if any.
    outcome: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(ForeignKey("help_requests.id", ondelete="SET NULL"), nullable=True)
