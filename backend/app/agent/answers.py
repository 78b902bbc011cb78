"""Where a caller's question gets its answer: the knowledge base when it has a safe one, else a
supervisor. The tools (receptionist.py) and the reply guard (reply_guard.py) both come here."""

from __future__ import annotations

import logging

from livekit.agents import AgentSession

from app.agent import follow_up
from app.agent.backend_client import KbAnswer
from app.agent.call_state import CallState, Escalation, transcript
from app.agent.phrases import ALREADY_ASKED, ASK_CONTACT, CANNOT_REACH, CHECKING, WILL_TEXT
from app.callers import UNKNOWN_CALLER
from app.questions import normalize_question

log = logging.getLogger(__name__)


class SupervisorUnreachable(Exception):
    """No help request could be opened: the caller is told to call back (`CANNOT_REACH`)."""


async def lookup(state: CallState, question: str) -> str | None:
    """The KB's answer when it is safe to say to this caller; None means escalate."""
    match = await _search(state, question)
    utterance = state.turn.utterance
    if match is not None and utterance and normalize_question(question) != normalize_question(utterance):
        # The model chose these words; the caller's own must lead to the same answer, or a
        # rewording could carry a question past the KB's checks.
        own = await _search(state, utterance)
        if own is None or own.entry_id != match.entry_id:
            log.info("the KB answers %r but not the caller's own words %r; escalating", question, utterance)
            return None
    if match is None:
        return None
    state.turn.kb_answer = match.answer
    state.sources.append(match.answer)
    try:
        await state.backend.record_use(match.entry_id)
    except Exception:  # a lost usage count must not hold up the caller
        log.warning("could not count a use of KB entry %s", match.entry_id)
    return match.answer


async def _search(state: CallState, question: str) -> KbAnswer | None:
    try:
        return await state.backend.search(question)
    except Exception:
        log.exception("knowledge-base search failed; escalating instead")
        return None


async def escalate(session: AgentSession[CallState], question: str) -> str:
    """Ask a supervisor (once per question in a call); what to tell the caller.

    Raises `SupervisorUnreachable` when no help request could be opened."""
    state = session.userdata
    try:
        said = await _open_request(session, question)
    except Exception:
        log.exception("could not open a help request for %r", question)
        _tell(state, CANNOT_REACH)
        raise SupervisorUnreachable from None
    _tell(state, said)
    return said


def _tell(state: CallState, said: str) -> None:
    state.turn.escalated = said
    state.sources.append(said)


async def _open_request(session: AgentSession[CallState], question: str) -> str:
    state = session.userdata
    key = normalize_question(question)
    if key in state.escalations:
        return ALREADY_ASKED
    caller = state.caller
    created = await state.backend.open_request(
        customer_name=caller.name or UNKNOWN_CALLER,
        question=question,
        customer_contact=caller.contact,
        channel=caller.channel,
        transcript=transcript(session.history, pending_question=question),
    )
    escalation = Escalation(request_id=created["id"])
    state.escalations[key] = escalation
    follow_up.watch(session, escalation)
    if caller.contact:
        return f"{CHECKING} {WILL_TEXT.format(contact=caller.contact)}"
    state.awaiting_contact.append(escalation.request_id)
    return f"{CHECKING} {ASK_CONTACT}"
