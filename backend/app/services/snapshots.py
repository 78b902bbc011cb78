"""Public read models: the shapes every client sees (API responses, webhook `request` bodies)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer

from app.models import HelpRequest, KnowledgeBaseEntry, SupervisorResponse

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
        )


class HelpRequestDetail(HelpRequestView):
    responses: list[SupervisorResponseView]

    @classmethod
    def of(cls, req: HelpRequest) -> HelpRequestDetail:
        base = HelpRequestView.of(req).model_dump()
        responses = [SupervisorResponseView.model_validate(r) for r in req.responses]
        return cls(**base, responses=responses)


class KnowledgeBaseEntryView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    question: str
    answer: str
    topic: str | None
    source_request_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    times_used: int


def entry_view(entry: KnowledgeBaseEntry) -> KnowledgeBaseEntryView:
    return KnowledgeBaseEntryView.model_validate(entry)


def response_view(resp: SupervisorResponse) -> SupervisorResponseView:
    return SupervisorResponseView.model_validate(resp)
