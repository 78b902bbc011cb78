"""The AI receptionist: one `Agent` for real calls (app/livekit_worker.py) and the text simulator.

KB first, deterministically. The model gets two tools and is told to use them, and `llm_node`
enforces it whatever the model does: a reply to a caller's question with no knowledge-base answer
behind it is replaced by the KB's answer or by an escalation, and a reply carrying a number or a day
that nothing in the call supplied is replaced the same way. Doubt escalates.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass

from livekit.agents import Agent, FlushSentinel, ModelSettings, RunContext, function_tool, llm
from livekit.agents.voice import SpeechHandle

from app.agent import tool_results
from app.agent.backend_client import BackendClient, FollowUpGone, KbAnswer
from app.agent.fact_guard import needs_the_kb, unsourced_facts
from app.callers import UNKNOWN_CALLER
from app.config import PROMPTS_DIR

log = logging.getLogger(__name__)

GREETING = "Thank you for calling {salon}. How can I help you today?"
CHECKING = "Let me check with my supervisor and get back to you."
WILL_TEXT = "I've passed your question on, and I'll text you the answer at {contact} as soon as they reply."
ASK_CONTACT = "What phone number can I text the answer to?"
CONTACT_SAVED = "Thank you. I'll text you at {contact} as soon as my supervisor replies."
CONTACT_UNCLEAR = "Sorry, I didn't catch a full phone number. Could you say it again, digit by digit?"
ALREADY_ASKED = "I've already asked my supervisor about that; you'll hear back as soon as they reply."
CANNOT_REACH = (
    "I'm sorry, I can't reach my supervisor right now. Please call us back a little later and we'll help you then."
)
LIVE_ANSWER = "Good news — my supervisor says: {answer}"
LIVE_UNRESOLVED = (
    "I'm sorry, my supervisor couldn't find an answer to your question yet. Please call us again and we'll do our best to help."
)
ANSWER_TEXTED = "My supervisor has replied, and the answer is on its way to you by text."
SAY_AGAIN = "Sorry, could you say that again?"

WATCHER_GRACE_SECONDS = 5.0


def load_instructions() -> str:
    """The salon's profile, then the rules for the tools."""
    return "\n\n".join(
        (PROMPTS_DIR / name).read_text(encoding="utf-8") for name in ("salon_profile.md", "receptionist_rules.md")
    )


@dataclass
class Caller:
    """Who is on the line, as far as the call tells (caller ID, the participant's name)."""

    name: str | None = None
    contact: str | None = None
    channel: str = "phone"


@dataclass
class _Turn:
    """What happened since the caller's latest message: the guard's evidence."""

    message_id: str = ""
    utterance: str = ""
    kb_answer: str | None = None
    escalated: str | None = None  # what the agent told the caller when it escalated


@dataclass
class _Escalation:
    request_id: str
    watcher: asyncio.Task[None] | None = None
    told: bool = False
    said: SpeechHandle | None = None


def _question_key(question: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", question.lower()))


def _phone_number(text: str) -> str | None:
    digits = re.sub(r"\D", "", text)
    if len(digits) < 7 or len(digits) > 15:
        return None
    return ("+" if text.strip().startswith("+") else "") + digits


@dataclass
class FollowUpTiming:
    poll_seconds: float = 1.0
    presence_seconds: float = 5.0


class Receptionist(Agent):
    def __init__(
        self, *, backend: BackendClient, caller: Caller, salon_name: str, instructions: str,
        timing: FollowUpTiming | None = None,
    ) -> None:
        super().__init__(instructions=instructions)
        self.backend = backend
        self.caller = caller
        self.salon_name = salon_name
        self.timing = timing or FollowUpTiming()
        self._turn = _Turn()
        self._escalations: dict[str, _Escalation] = {}
        self._awaiting_contact: list[str] = []
        # Everything the agent may take a fact from in this call: what the KB and the supervisor said,
        # the agent's own phrases, the caller's number. Not the caller's other words: "my friend said
        # a trim is $30" must not let the model confirm $30.
        self._sources: list[str] = [salon_name, caller.contact or ""]
        self._hung_up = asyncio.Event()
        self.greeted: SpeechHandle | None = None

    @property
    def request_ids(self) -> list[str]:
        return [e.request_id for e in self._escalations.values()]

    async def on_enter(self) -> None:
        greeting = GREETING.format(salon=self.salon_name)
        self._sources.append(greeting)
        self.greeted = self.session.say(greeting)

    # -- tools -------------------------------------------------------------------------------------

    @function_tool
    async def lookup_knowledge_base(self, context: RunContext, question: str) -> str:
        """Look up the salon's knowledge base. Call this for every question a caller asks about the
        salon (prices, hours, services, policies, anything factual) before you answer it.

        Args:
            question: The caller's question, in their own words.
        """
        answer = await self._lookup(question)
        return tool_results.kb_answer(answer) if answer else tool_results.NO_ANSWER_TEXT

    @function_tool
    async def request_supervisor_help(self, context: RunContext, question: str) -> str:
        """Ask a human supervisor. Call this when the knowledge base has no answer, or when the caller
        asks for something only staff can decide. The caller's name, number and the call so far go along.

        Args:
            question: The caller's question, in their own words.
        """
        return tool_results.say(await self._escalate(question))

    @function_tool
    async def save_caller_contact(self, context: RunContext, phone_number: str) -> str:
        """Save the phone number the caller gave for the follow-up text.

        Args:
            phone_number: The number as the caller said it.
        """
        number = _phone_number(phone_number)
        if number is None:
            return tool_results.say(CONTACT_UNCLEAR)
        self.caller.contact = number
        self._sources.append(number)
        waiting, self._awaiting_contact = self._awaiting_contact, []
        for rid in waiting:
            try:
                await self.backend.update_request(rid, customer_contact=number)
            except Exception:
                log.exception("could not add contact %s to help request %s", number, rid)
        said = CONTACT_SAVED.format(contact=number)
        self._sources.append(said)
        return tool_results.say(said)

    # -- the guard ---------------------------------------------------------------------------------

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        self._track_turn(chat_ctx)
        text: list[str] = []
        async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
            if isinstance(chunk, str):
                text.append(chunk)
            elif isinstance(chunk, llm.ChatChunk) and chunk.delta is not None:
                if chunk.delta.content:
                    text.append(chunk.delta.content)
                if chunk.delta.tool_calls:
                    yield llm.ChatChunk(id=chunk.id, delta=llm.ChoiceDelta(role="assistant", tool_calls=chunk.delta.tool_calls))
            else:
                yield chunk
        # Held back until complete: a reply is checked whole before the caller hears any of it.
        reply = "".join(text).strip()
        if reply:
            yield await self._vetted(reply)
        elif model_settings.tool_choice == "none":
            # The session cut off a model stuck calling tools: the caller still gets an answer or a human.
            yield await self._fallback()

    def _track_turn(self, chat_ctx: llm.ChatContext) -> None:
        for item in reversed(chat_ctx.items):
            if isinstance(item, llm.ChatMessage) and item.role == "user":
                if item.id != self._turn.message_id:
                    self._turn = _Turn(message_id=item.id, utterance=item.text_content or "")
                return

    async def _vetted(self, reply: str) -> str:
        turn = self._turn
        if turn.kb_answer is None and not turn.escalated and needs_the_kb(turn.utterance):
            log.warning("the model replied to a question without the knowledge base; looking it up: %r", turn.utterance)
            return await self._answer_or_escalate(turn.utterance)
        unsourced = unsourced_facts(reply, " ".join(self._sources))
        if not unsourced:
            return reply
        log.warning("the model said facts nothing in the call supplied (%s): %r", ", ".join(sorted(unsourced)), reply)
        return await self._fallback()

    async def _fallback(self) -> str:
        turn = self._turn
        if turn.kb_answer is not None:
            return turn.kb_answer
        if turn.escalated is not None:
            return turn.escalated
        if needs_the_kb(turn.utterance):
            return await self._answer_or_escalate(turn.utterance)
        return SAY_AGAIN

    async def _answer_or_escalate(self, question: str) -> str:
        answer = await self._lookup(question)
        return answer if answer is not None else await self._escalate(question)

    # -- the work behind the tools -----------------------------------------------------------------

    async def _search(self, question: str) -> KbAnswer | None:
        try:
            return await self.backend.search(question)
        except Exception:
            log.exception("knowledge-base search failed; escalating instead")
            return None

    async def _lookup(self, question: str) -> str | None:
        match = await self._search(question)
        utterance = self._turn.utterance
        if match is not None and utterance and _question_key(question) != _question_key(utterance):
            # The model chose these words; the caller's own must lead to the same answer, or a
            # rewording could carry a question past the KB's checks.
            own = await self._search(utterance)
            if own is None or own.entry_id != match.entry_id:
                log.info("the KB answers %r but not the caller's own words %r; escalating", question, utterance)
                return None
        if match is None:
            return None
        self._turn.kb_answer = match.answer
        self._sources.append(match.answer)
        try:
            await self.backend.record_use(match.entry_id)
        except Exception:  # a lost usage count must not hold up the caller
            log.warning("could not count a use of KB entry %s", match.entry_id)
        return match.answer

    async def _escalate(self, question: str) -> str:
        said = await self._open_request(question)
        self._turn.escalated = said
        self._sources.append(said)
        return said

    async def _open_request(self, question: str) -> str:
        key = _question_key(question)
        if key in self._escalations:
            return ALREADY_ASKED
        try:
            created = await self.backend.open_request(
                customer_name=self.caller.name or UNKNOWN_CALLER, question=question,
                customer_contact=self.caller.contact, channel=self.caller.channel,
                transcript=self.transcript(pending_question=question),
            )
        except Exception:
            log.exception("could not open a help request for %r", question)
            return CANNOT_REACH
        rid = created["id"]
        escalation = _Escalation(request_id=rid)
        self._escalations[key] = escalation
        escalation.watcher = asyncio.create_task(self._follow_up(escalation), name=f"follow-up {rid}")
        if self.caller.contact:
            return f"{CHECKING} {WILL_TEXT.format(contact=self.caller.contact)}"
        self._awaiting_contact.append(rid)
        return f"{CHECKING} {ASK_CONTACT}"

    def transcript(self, pending_question: str | None = None) -> list[dict[str, str]]:
        lines = []
        for item in self.session.history.items:
            if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant") and item.text_content:
                lines.append({"role": "caller" if item.role == "user" else "agent", "text": item.text_content})
        if pending_question and not any(line["text"] == pending_question for line in lines):
            lines.append({"role": "caller", "text": pending_question})
        return lines[-200:]

    # -- live follow-up ----------------------------------------------------------------------------

    async def _follow_up(self, escalation: _Escalation) -> None:
        """While the call lasts: keep the backend told the caller is here, and say the answer when it comes."""
        rid = escalation.request_id
        renewed = time.monotonic()  # the request was opened with the caller on the line
        while not self._hung_up.is_set():
            try:
                if time.monotonic() - renewed >= self.timing.presence_seconds:
                    await self.backend.set_presence(rid, on_line=True)
                    renewed = time.monotonic()
                request = await self.backend.get_request(rid)
                if request["status"] != "pending":
                    break
            except Exception as exc:  # the backend blinked: the hold outlives a few missed rounds
                log.warning("follow-up check of %s failed: %s", rid, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hung_up.wait(), self.timing.poll_seconds)
        else:
            return
        taken: dict | None = None
        try:
            taken = await self.backend.take_follow_up(rid)
        except FollowUpGone:
            said = ANSWER_TEXTED
        except Exception:
            # Unsure whether the take went through: telling the caller beats leaving them with nothing.
            log.exception("could not take the follow-up of %s; saying it anyway", rid)
            said = self._outcome_words(request)
        else:
            said = self._outcome_words(taken)
        self._sources.append(said)
        # Not interruptible: an answer half said is not an answer given (and is then texted).
        escalation.said = self.session.say(said, allow_interruptions=False)
        await escalation.said.wait_for_playout()
        escalation.told = taken is not None and not escalation.said.interrupted

    @staticmethod
    def _outcome_words(request: dict) -> str:
        if request["status"] == "resolved" and request.get("answer"):
            return LIVE_ANSWER.format(answer=request["answer"])
        return LIVE_UNRESOLVED

    async def follow_ups_said(self, timeout: float) -> bool:
        """Wait (up to `timeout` s) until every question of this call has had its outcome said; True if so."""
        watchers = [e.watcher for e in self._escalations.values() if e.watcher is not None]
        if not watchers:
            return True
        _done, pending = await asyncio.wait(watchers, timeout=timeout)
        return not pending

    async def call_ended(self) -> None:
        """The caller hung up: whatever the agent has not said goes out as a text; the transcript is kept."""
        self._hung_up.set()
        # Let each watcher finish the call it is making (cut off mid-request, it could leave the
        # backend guessing); only one stuck for long is cancelled.
        watchers = [e.watcher for e in self._escalations.values() if e.watcher is not None]
        if watchers:
            _done, stuck = await asyncio.wait(watchers, timeout=WATCHER_GRACE_SECONDS)
            for watcher in stuck:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        transcript = self.transcript()
        for escalation in self._escalations.values():
            try:
                # The transcript first: an answered request takes it only while the call lasts.
                await self.backend.update_request(escalation.request_id, transcript=transcript)
                if not escalation.told:
                    # Presence off: from then on no take can succeed; then return any take the
                    # caller did not hear (one may have committed as the call was ending).
                    await self.backend.set_presence(escalation.request_id, on_line=False)
                    await self.backend.give_back_follow_up(escalation.request_id)
            except Exception:
                log.exception("could not close the call on help request %s", escalation.request_id)
