"""A deterministic stand-in for the cloud LLM, for `make call` and tests: no key, no network.

It drives the same tools a real model would: every caller question goes to the knowledge base, a KB
answer is said verbatim, a lookup with nothing for the caller to hear means asking the supervisor,
the words any other tool gives (or fails with) are said as they are, and a number given after the
agent asked for one is saved as the caller's contact.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, llm

from app.agent import tool_results
from app.agent.phrases import ASK_CONTACT, CONTACT_UNCLEAR, SAY_AGAIN
from app.questions import PHONE_NUMBER

_GOODBYE = re.compile(r"^\W*(?:ok(?:ay)?\W+)?(?:bye|goodbye|that's all|that is all|no,? thanks?|nothing else)\b", re.I)
_THANKS = re.compile(r"^\W*(?:great\W+|perfect\W+|ok(?:ay)?\W+)?(?:thanks|thank you|cheers)\W*$", re.I)
_GREETING = re.compile(r"^\W*(?:hi|hello|hey|good (?:morning|afternoon|evening))\W*$", re.I)


def reply_text(content: str) -> llm.ChoiceDelta:
    return llm.ChoiceDelta(role="assistant", content=content)


def tool_call(name: str, **arguments: Any) -> llm.ChoiceDelta:
    call = llm.FunctionToolCall(name=name, arguments=json.dumps(arguments), call_id=f"call_{uuid.uuid4().hex[:12]}")
    return llm.ChoiceDelta(role="assistant", tool_calls=[call])


def _awaiting_contact(items: list[llm.ChatItem]) -> bool:
    """Did the agent's last tool result ask the caller for a number?"""
    for item in reversed(items):
        if isinstance(item, llm.FunctionCallOutput):
            said = tool_results.words(item.output) or ""
            return said.endswith(ASK_CONTACT) or said == CONTACT_UNCLEAR
    return False


def respond(chat_ctx: llm.ChatContext, salon_name: str) -> llm.ChoiceDelta:
    """The next step of the conversation: words to say, or one tool call."""
    items = [i for i in chat_ctx.items if isinstance(i, (llm.ChatMessage, llm.FunctionCall, llm.FunctionCallOutput))]
    last = items[-1] if items else None
    if isinstance(last, llm.FunctionCallOutput):
        said = tool_results.words(last.output)
        if said is None and last.name == "lookup_knowledge_base":
            call = next(i for i in items if isinstance(i, llm.FunctionCall) and i.call_id == last.call_id)
            return tool_call("request_supervisor_help", question=json.loads(call.arguments)["question"])
        return reply_text(said or SAY_AGAIN)
    utterance = last.text_content if isinstance(last, llm.ChatMessage) and last.role == "user" else None
    if not utterance or not utterance.strip():
        return reply_text("How can I help you today?")
    number = PHONE_NUMBER.search(utterance)
    if number and _awaiting_contact(items):
        return tool_call("save_caller_contact", phone_number=number.group(0))
    if _GOODBYE.search(utterance):
        return reply_text(f"Thank you for calling {salon_name}. Goodbye!")
    if _THANKS.search(utterance):
        return reply_text("You're welcome. Is there anything else I can help you with?")
    if _GREETING.search(utterance):
        return reply_text("Hello! What can I help you with?")
    return tool_call("lookup_knowledge_base", question=utterance.strip())


class ScriptedLLM(llm.LLM):
    """An `llm.LLM` whose every reply is one step computed from the conversation so far."""

    def __init__(self, script: Callable[[llm.ChatContext], llm.ChoiceDelta], name: str = "scripted") -> None:
        super().__init__()
        self.script = script
        self.name = name

    @property
    def model(self) -> str:
        return self.name

    @property
    def provider(self) -> str:
        return "frontdesk"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **_: Any,
    ) -> llm.LLMStream:
        return _Reply(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options, delta=self.script(chat_ctx)
        )


class LocalResponder(ScriptedLLM):
    def __init__(self, *, salon_name: str) -> None:
        super().__init__(lambda chat_ctx: respond(chat_ctx, salon_name), name="local-responder")


class _Reply(llm.LLMStream):
    def __init__(self, responder: ScriptedLLM, *, delta: llm.ChoiceDelta, **kwargs: Any) -> None:
        super().__init__(responder, **kwargs)
        self._delta = delta

    async def _run(self) -> None:
        self._event_ch.send_nowait(llm.ChatChunk(id=f"local_{uuid.uuid4().hex[:12]}", delta=self._delta))
