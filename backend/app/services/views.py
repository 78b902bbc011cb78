"""Public read models, all in one place: the shapes every client sees (API responses, webhook
`request` bodies). Request payloads are the API's (api/schemas.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from app.models import HelpRequest

if TYPE_CHECKING:  # search builds on these views: a runtime import would go round in a circle
    from app.services.kb.search import SearchResult

# Always "+00:00": the contract asks for an explicit UTC offset.
Timestamp = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str)]


class TimelineItem(BaseModel):
    timestamp: Timestamp
    message: str


class TranscriptLine(BaseModel):
    role: str
    text: str


class SupervisorResponseView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    request_id: str
    answer: str | None
    topic: str | None
    unresolved: bool
    notes: str | None
    responder: str
    created_at: Timestamp


class HelpRequestView(BaseModel):
    id: str
    customer_name: str
    channel: str
    question: str
    status: str
    created_at: Timestamp
    escalated_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp
    resolved_at: Timestamp | None
    answer: str | None
    answered_by: str | None
    notes: str | None
    customer_contact: str | None
    history: list[TimelineItem]
    transcript: list[TranscriptLine]
    attached_to: str | None = Field(
        description="The pending request with the same question this one joined: one answer serves both."
    )
    attached: list[str] = Field(description="Requests from other callers attached to this one.")
    caller_on_line_until: Timestamp | None = Field(
        description="While in the future, the caller is still in the call and will hear the answer from the agent."
    )

    @classmethod
    def of(cls, req: HelpRequest) -> HelpRequestView:
        return cls(
            id=req.id,
            customer_name=req.customer_name,
            channel=req.channel,
            question=req.question,
            status=req.status,
            created_at=req.created_at,
            escalated_at=req.escalated_at,
            updated_at=req.updated_at,
            expires_at=req.expires_at,
            resolved_at=req.resolved_at,
            answer=req.answer,
            answered_by=req.answered_by,
            notes=req.notes,
            customer_contact=req.customer_contact,
            history=[TimelineItem(timestamp=e.at, message=e.message) for e in req.events],
            transcript=[TranscriptLine.model_validate(t) for t in req.transcript or []],
            attached_to=req.attached_to,
            attached=[a.id for a in req.attachments],
            caller_on_line_until=req.caller_on_line_until,
        )


class CreatedHelpRequest(HelpRequestView):
    call_key: str = Field(
        description="This request's key, given only here: with the agent token, send it as `X-Call-Key` to "
        "change the request (PATCH, presence, follow-up) or to read its caller's data."
    )


class HelpRequestDetail(HelpRequestView):
    responses: list[SupervisorResponseView]

    @classmethod
    def of(cls, req: HelpRequest) -> HelpRequestDetail:
        base = HelpRequestView.of(req).model_dump()
        responses = [SupervisorResponseView.model_validate(r) for r in req.responses]
        return cls(**base, responses=responses)

    def without_caller_data(self) -> HelpRequestDetail:
        """What the agent token may read of a request without its call key: where it stands and the
        answer, nothing of the caller (name, number, words, notes)."""
        return self.model_copy(
            update={
                "customer_name": "",
                "question": "",
                "customer_contact": None,
                "notes": None,
                "transcript": [],
                "history": [],
                "responses": [r.model_copy(update={"notes": None}) for r in self.responses],
            }
        )


class PhrasingView(BaseModel):
    """Another way callers asked the entry's question (learned from an answered request)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    text: str
    source_request_id: str | None
    created_at: Timestamp
    actor: str


class KnowledgeBaseEntryView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    question: str
    answer: str
    topic: str | None
    source_request_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    retired_at: Timestamp | None = None
    times_used: int
    last_used_at: Timestamp | None = None
    phrasings: list[PhrasingView] = Field(
        default_factory=list, description="Other ways callers asked this question; each matches like the question."
    )


# --- knowledge base search and audit ---------------------------------------------------------


class CandidateOut(BaseModel):
    entry: KnowledgeBaseEntryView
    score: float
    judged: float | None = Field(
        None, description="The KB judge's probability that this entry answers the question (null: not judged)."
    )
    rejected: str | None = Field(description="Why this entry is not the match (null for the match).")


class SearchOut(BaseModel):
    query: str
    match: KnowledgeBaseEntryView | None
    candidates: list[CandidateOut]
    reason: str = Field(description="Why there is a match, or why the agent must escalate.")

    @classmethod
    def of(cls, result: SearchResult) -> SearchOut:
        return cls(
            query=result.query,
            match=result.match,
            candidates=[
                CandidateOut(entry=c.entry, score=c.score, judged=c.judged, rejected=c.rejected)
                for c in result.candidates
            ],
            reason=result.reason,
        )


class EntryChange(BaseModel):
    at: str
    action: str
    actor: str
    question: str
    answer: str
    topic: str | None
    phrasing: str | None = Field(None, description="The phrasing added or removed (those actions only).")


class EntryDetail(KnowledgeBaseEntryView):
    history: list[EntryChange]


class ConflictOut(BaseModel):
    detail: str
    current: dict[str, Any] = Field(description="The request as it is now: who answered it and what.")


# --- outbox and overview --------------------------------------------------------------------


class DeliveryView(BaseModel):
    event_id: str
    type: str
    recipient: str
    request_id: str | None
    message: str
    sink: str
    status: str
    attempts: int
    last_error: str | None
    created_at: Timestamp
    next_attempt_at: Timestamp
    delivered_at: Timestamp | None


class DayStats(BaseModel):
    day: date
    kb_answers: int = Field(description="Caller questions the agent answered from the KB")
    escalations: int = Field(description="Caller questions that became help requests")
    answered_without_escalation: float | None = Field(
        description="kb_answers / (kb_answers + escalations); null on a day with no questions"
    )
    resolved: int = Field(description="Requests a supervisor answered that day")
    median_minutes_to_answer: float | None = Field(description="From question to answer, over that day's answers")
    timeouts: int = Field(description="Requests that ran out of time with no answer that day")
    cannot_answer: int = Field(description="Requests a supervisor marked as not answerable that day")
