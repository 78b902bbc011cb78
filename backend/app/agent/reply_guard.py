"""The net under the model, run as the receptionist's `llm_node`.

A reply to a caller's question with no knowledge-base answer behind it is replaced by the KB's
answer or by an escalation, and a reply carrying a number or a day that nothing in the call supplied
(fact_guard.py) is replaced the same way. Doubt escalates.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator

from livekit.agents import AgentSession, FlushSentinel, ModelSettings, llm

from app.agent.answers import SupervisorUnreachable, escalate, lookup
from app.agent.call_state import CallState, Turn
from app.agent.fact_guard import unsourced_facts
from app.agent.phrases import CANNOT_REACH, SAY_AGAIN
from app.questions import needs_the_kb

log = logging.getLogger(__name__)

Chunk = llm.ChatChunk | str | FlushSentinel


async def guarded(
    session: AgentSession[CallState],
    chat_ctx: llm.ChatContext,
    replies: AsyncIterable[Chunk],
    model_settings: ModelSettings,
) -> AsyncIterator[Chunk]:
    """The model's `replies`, tool calls passed through, words held back and vetted whole."""
    _track_turn(session.userdata, chat_ctx)
    text: list[str] = []
    async for chunk in replies:
        if isinstance(chunk, str):
            text.append(chunk)
        elif isinstance(chunk, llm.ChatChunk) and chunk.delta is not None:
            if chunk.delta.content:
                text.append(chunk.delta.content)
            if chunk.delta.tool_calls:
                yield llm.ChatChunk(
                    id=chunk.id, delta=llm.ChoiceDelta(role="assistant", tool_calls=chunk.delta.tool_calls)
                )
        else:
            yield chunk
    # Held back until complete: a reply is checked whole before the caller hears any of it.
    reply = "".join(text).strip()
    if reply:
        yield await _vetted(session, reply)
    elif model_settings.tool_choice == "none":
        # The session cut off a model stuck calling tools: the caller still gets an answer or a human.
        yield await _fallback(session)


def _track_turn(state: CallState, chat_ctx: llm.ChatContext) -> None:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            if item.id != state.turn.message_id:
                state.turn = Turn(message_id=item.id, utterance=item.text_content or "")
            return


async def _vetted(session: AgentSession[CallState], reply: str) -> str:
    state = session.userdata
    turn = state.turn
    if turn.kb_answer is None and not turn.escalated and needs_the_kb(turn.utterance):
        log.warning("the model replied to a question without the knowledge base; looking it up: %r", turn.utterance)
        return await _answer_or_escalate(session, turn.utterance)
    unsourced = unsourced_facts(reply, " ".join(state.sources))
    if not unsourced:
        return reply
    log.warning("the model said facts nothing in the call supplied (%s): %r", ", ".join(sorted(unsourced)), reply)
    return await _fallback(session)


async def _fallback(session: AgentSession[CallState]) -> str:
    turn = session.userdata.turn
    if turn.kb_answer is not None:
        return turn.kb_answer
    if turn.escalated is not None:
        return turn.escalated
    if needs_the_kb(turn.utterance):
        return await _answer_or_escalate(session, turn.utterance)
    return SAY_AGAIN


async def _answer_or_escalate(session: AgentSession[CallState], question: str) -> str:
    answer = await lookup(session.userdata, question)
    if answer is not None:
        return answer
    try:
        return await escalate(session, question)
    except SupervisorUnreachable:
        return CANNOT_REACH
