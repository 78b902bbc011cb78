"""One call's state: the `AgentSession`'s userdata, which tools reach as `RunContext[CallState]`.

It outlives the `Agent` (and the session's activity): the hang-up work in follow_up.py still reads
it after the session has closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from livekit.agents import llm
from livekit.agents.voice import SpeechHandle

from app.agent.backend_client import BackendClient
from app.agent.request_changes import RequestChanges


@dataclass
class Caller:
    """Who is on the line, as far as the call tells (caller ID, the participant's name)."""

    name: str | None = None
    contact: str | None = None
    channel: str = "phone"


@dataclass
class FollowUpTiming:
    # The event stream says when an answer comes; this poll only covers the stream being down.
    poll_seconds: float = 12.0
    presence_seconds: float = 5.0
    # After a failed check or presence renewal: the backend blinked, and the caller is waiting.
    retry_seconds: float = 1.0


@dataclass
class Turn:
    """What happened since the caller's latest message: the reply guard's evidence."""

    message_id: str = ""
    utterance: str = ""
    kb_answer: str | None = None
    escalated: str | None = None  # what the agent told the caller when it escalated


@dataclass
class Escalation:
    request_id: str
    watcher: asyncio.Task[None] | None = None
    told: bool = False
    said: SpeechHandle | None = None


@dataclass
class CallState:
    backend: BackendClient
    caller: Caller
    salon_name: str
    timing: FollowUpTiming = field(default_factory=FollowUpTiming)
    turn: Turn = field(default_factory=Turn)
    # By the question's normalized words: a question asked twice in a call is one request.
    escalations: dict[str, Escalation] = field(default_factory=dict)
    # Requests opened before the caller gave a number: they get the number once the caller does.
    awaiting_contact: list[str] = field(default_factory=list)
    # Everything the agent may take a fact from in this call: what the KB and the supervisor said,
    # the agent's own phrases, the caller's number. Not the caller's other words: "my friend said
    # a trim is $30" must not let the model confirm $30.
    sources: list[str] = field(default_factory=list)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    # Opened with the first escalation: a call that never waits for a supervisor needs no stream.
    changes: RequestChanges | None = None

    def __post_init__(self) -> None:
        self.sources += [self.salon_name, self.caller.contact or ""]


def transcript(history: llm.ChatContext, pending_question: str | None = None) -> list[dict[str, str]]:
    """The call so far as the backend keeps it; `pending_question` is added if the history lacks it yet."""
    lines = []
    for item in history.items:
        if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant") and item.text_content:
            lines.append({"role": "caller" if item.role == "user" else "agent", "text": item.text_content})
    if pending_question and not any(line["text"] == pending_question for line in lines):
        lines.append({"role": "caller", "text": pending_question})
    return lines[-200:]
