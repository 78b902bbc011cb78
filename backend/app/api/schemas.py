"""Request payloads; response shapes come from the domain's read models."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.models import Channel
from app.services.knowledge_base import SearchResult
from app.services.snapshots import (
    HelpRequestDetail,
    HelpRequestView,
    KnowledgeBaseEntryView,
)

__all__ = [
    "ConflictOut",
    "HelpRequestCreate",
    "HelpRequestDetail",
    "HelpRequestView",
    "KnowledgeBaseEntryView",
    "ResponseCreate",
    "SearchOut",
]

Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Long = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class TranscriptIn(BaseModel):
    role: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    text: Annotated[str, StringConstraints(max_length=4000)]


class HelpRequestCreate(BaseModel):
    # Extra fields are ignored: the seed's frontend and agents send more than we read.
    model_config = ConfigDict(extra="ignore")

    customer_name: Name
    question: Question
    channel: Channel = Channel.PHONE
    customer_contact: Short | None = None
    notes: Long | None = None
    transcript: list[TranscriptIn] = Field(default_factory=list, max_length=500)


class ResponseCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    answer: Long | None = None
    topic: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    unresolved: bool = False
    notes: Long | None = None
    answered_by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = Field(
        default=None, description="Who answered, for the audit trail (defaults to 'supervisor')."
    )

    @model_validator(mode="after")
    def _answer_unless_unresolved(self) -> ResponseCreate:
        if not self.unresolved and not self.answer:
            raise ValueError("answer must not be empty unless unresolved is true")
        return self


class CandidateOut(BaseModel):
    entry: KnowledgeBaseEntryView
    score: float


class SearchOut(BaseModel):
    query: str
    match: KnowledgeBaseEntryView | None
    candidates: list[CandidateOut]

    @classmethod
    def of(cls, result: SearchResult) -> SearchOut:
        return cls(
            query=result.query,
            match=result.match,
            candidates=[CandidateOut(entry=c.entry, score=c.score) for c in result.candidates],
        )


class ConflictOut(BaseModel):
    detail: str
    current: dict[str, Any] = Field(description="The request as it is now: who answered it and what.")

