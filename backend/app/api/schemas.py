"""Request payloads; response shapes are the domain's read models (services/views.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from app.enums import Channel


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)


def _says_something(value: str) -> str:
    if not any(ch.isalnum() for ch in value):
        raise ValueError("must contain a letter or a digit")
    return value


def _bounded(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Question = Annotated[str, _bounded(1, 2000), NoNul, AfterValidator(_says_something)]
Name = Annotated[str, _bounded(1, 200), NoNul]
Contact = Annotated[str, _bounded(0, 200), NoNul]
Label = Annotated[str, _bounded(1, 100), NoNul]
Topic = Annotated[str, _bounded(0, 100), NoNul]
Long = Annotated[str, _bounded(0, 4000), NoNul]
Ident = Annotated[str, _bounded(1, 36), NoNul]
BY = (
    "On whose behalf the admin token makes the change, for the audit trail (a named supervisor's token "
    "always acts as that supervisor)."
)


class TranscriptIn(BaseModel):
    role: Annotated[str, _bounded(1, 40), NoNul]
    text: Annotated[str, StringConstraints(max_length=4000), NoNul]


class HelpRequestCreate(BaseModel):
    # Extra fields are ignored: the seed's frontend and agents send more than we read.
    model_config = ConfigDict(extra="ignore")

    customer_name: Name
    question: Question
    channel: Channel = Channel.PHONE
    customer_contact: Contact | None = None
    notes: Long | None = None
    transcript: list[TranscriptIn] = Field(default_factory=list, max_length=200)
    caller_on_line: bool = Field(
        default=False,
        description="The agent opens the request during the call: the caller's presence lease starts at once "
        "(renew it with POST /api/help-requests/{id}/presence).",
    )


class HelpRequestUpdate(BaseModel):
    """What the agent learns later in the call. Name and contact only while the request is pending."""

    model_config = ConfigDict(extra="forbid")

    customer_name: Name | None = None
    customer_contact: Annotated[str, _bounded(1, 200), NoNul] | None = None
    transcript: list[TranscriptIn] | None = Field(default=None, max_length=200)


class PresenceIn(BaseModel):
    on_line: bool = Field(description="True while the caller is still in the call (renew every few seconds).")


class ResponseCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    answer: Long | None = None
    topic: Topic | None = None
    unresolved: bool = False
    notes: Long | None = None
    answered_by: Label | None = Field(
        default=None,
        description="On whose behalf the admin token answers, for the audit trail (a named supervisor's "
        "token always answers as that supervisor).",
    )
    entry_id: Ident | None = Field(
        default=None,
        description="Answer with this knowledge base entry: its answer is sent, and the caller's question "
        "becomes one of its phrasings (`answer` is then not needed).",
    )
    # A form's empty box may come as "": no reminder, as with none.
    follow_up_minutes: Annotated[
        float | None, BeforeValidator(lambda v: None if isinstance(v, str) and not v.strip() else v)
    ] = Field(
        default=None,
        ge=0,
        le=43200,
        description="With `unresolved`: remind the supervisors this many minutes from now to follow up with the "
        "caller (0 or none: no reminder). Ignored with an answer.",
    )

    @model_validator(mode="after")
    def _answer_unless_unresolved(self) -> ResponseCreate:
        if not self.unresolved and not self.answer and not self.entry_id:
            raise ValueError("answer must not be empty unless unresolved is true or entry_id names an entry")
        if self.unresolved and self.entry_id:
            raise ValueError("entry_id answers the request: it cannot go with unresolved")
        return self


class EntryCreate(BaseModel):
    question: Question
    answer: Annotated[str, _bounded(1, 4000), NoNul]
    topic: Topic | None = None
    by: Label | None = Field(default=None, description=BY)


class PhrasingCreate(BaseModel):
    text: Question
    by: Label | None = Field(default=None, description=BY)


class EntryEdit(BaseModel):
    question: Question | None = None
    answer: Annotated[str, _bounded(1, 4000), NoNul] | None = None
    topic: Topic | None = None
    by: Label | None = Field(default=None, description=BY)

    @model_validator(mode="after")
    def _something(self) -> EntryEdit:
        if self.question is None and self.answer is None and self.topic is None:
            raise ValueError("give at least one of question, answer, topic")
        return self
