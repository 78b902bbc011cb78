"""The AI receptionist: one `Agent` for real calls (app/livekit_worker.py) and the text simulator.

KB first, deterministically. The model gets its tools and is told to use them, and `llm_node`
enforces it whatever the model does (reply_guard.py). Per-call state is the session's userdata
(`CallState`), which the tools reach through `RunContext[CallState]`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterable

from livekit.agents import Agent, FlushSentinel, ModelSettings, RunContext, ToolError, function_tool, llm
from livekit.agents.voice import SpeechHandle

from app.agent import answers, reply_guard, tool_results
from app.agent.call_state import CallState
from app.agent.phrases import CANNOT_REACH, CONTACT_SAVED, CONTACT_UNCLEAR, GREETING
from app.config import PROMPTS_DIR

log = logging.getLogger(__name__)


def load_instructions() -> str:
    """The salon's profile, then the rules for the tools."""
    return "\n\n".join(
        (PROMPTS_DIR / name).read_text(encoding="utf-8") for name in ("salon_profile.md", "receptionist_rules.md")
    )


def _phone_number(text: str) -> str | None:
    digits = re.sub(r"\D", "", text)
    if len(digits) < 7 or len(digits) > 15:
        return None
    return ("+" if text.strip().startswith("+") else "") + digits


class Receptionist(Agent):
    def __init__(self, *, instructions: str) -> None:
        super().__init__(instructions=instructions)
        self.greeted: SpeechHandle | None = None

    async def on_enter(self) -> None:
        state: CallState = self.session.userdata
        greeting = GREETING.format(salon=state.salon_name)
        state.sources.append(greeting)
        self.greeted = self.session.say(greeting)

    @function_tool
    async def lookup_knowledge_base(self, context: RunContext[CallState], question: str) -> str:
        """Look up the salon's knowledge base. Call this for every question a caller asks about the
        salon (prices, hours, services, policies, anything factual) before you answer it.

        Args:
            question: The caller's question, in their own words.
        """
        answer = await answers.lookup(context.userdata, question)
        # No answer is no failure: it is the ordinary way to a supervisor.
        return tool_results.NO_ANSWER if answer is None else tool_results.kb_answer(answer)

    @function_tool
    async def request_supervisor_help(self, context: RunContext[CallState], question: str) -> str:
        """Ask a human supervisor. Call this when the knowledge base has no answer, or when the caller
        asks for something only staff can decide. The caller's name, number and the call so far go along.

        Args:
            question: The caller's question, in their own words.
        """
        try:
            said = await answers.escalate(context.session, question)
        except answers.SupervisorUnreachable:
            raise ToolError(tool_results.say(CANNOT_REACH)) from None
        return tool_results.say(said)

    @function_tool
    async def save_caller_contact(self, context: RunContext[CallState], phone_number: str) -> str:
        """Save the phone number the caller gave for the follow-up text.

        Args:
            phone_number: The number as the caller said it.
        """
        state = context.userdata
        number = _phone_number(phone_number)
        if number is None:
            raise ToolError(tool_results.say(CONTACT_UNCLEAR))
        state.caller.contact = number
        state.sources.append(number)
        waiting, state.awaiting_contact = state.awaiting_contact, []
        for rid in waiting:
            try:
                await state.backend.update_request(rid, customer_contact=number)
            except Exception:
                log.exception("could not add contact %s to help request %s", number, rid)
        said = CONTACT_SAVED.format(contact=number)
        state.sources.append(said)
        return tool_results.say(said)

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        replies = Agent.default.llm_node(self, chat_ctx, tools, model_settings)
        async for chunk in reply_guard.guarded(self.session, chat_ctx, replies, model_settings):
            yield chunk
