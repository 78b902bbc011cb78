"""The live follow-up: while the caller is on the line, keep the backend told they are and say the
supervisor's answer the moment it comes; when the call ends, whatever they did not hear goes out as
a text (the backend holds the text back while the agent says the caller is here).

News of an answer comes over the backend's event stream (request_changes.py); a slow poll covers a
stream that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from livekit.agents import AgentSession

from app.agent import call_log
from app.agent.backend_client import FollowUpGone
from app.agent.call_state import CallState, Escalation, transcript
from app.agent.phrases import ANSWER_TEXTED, LIVE_ANSWER, LIVE_UNRESOLVED
from app.agent.request_changes import RequestChanges

log = logging.getLogger(__name__)

WATCHER_GRACE_SECONDS = 5.0


def watch(session: AgentSession[CallState], escalation: Escalation) -> None:
    """Follow `escalation` for the rest of the call, in the background."""
    state = session.userdata
    if state.changes is None:
        state.changes = RequestChanges(state.backend)
    changed = state.changes.watch(escalation.request_id)
    coro, context = call_log.about_request(escalation.request_id, _follow_up(session, escalation, changed))
    escalation.watcher = asyncio.create_task(coro, name=f"follow-up {escalation.request_id}", context=context)


async def _follow_up(session: AgentSession[CallState], escalation: Escalation, changed: asyncio.Event) -> None:
    state = session.userdata
    rid = escalation.request_id
    request = await _outcome(state, rid, changed)
    if request is None:
        return
    taken: dict[str, Any] | None = None
    try:
        taken = await state.backend.take_follow_up(rid)
    except FollowUpGone:
        said = ANSWER_TEXTED
    except Exception:
        # Unsure whether the take went through: telling the caller beats leaving them with nothing.
        log.exception("could not take the follow-up of %s; saying it anyway", rid)
        said = _outcome_words(request)
    else:
        said = _outcome_words(taken)
    state.sources.append(said)
    # Not interruptible: an answer half said is not an answer given (and is then texted).
    escalation.said = session.say(said, allow_interruptions=False)
    await escalation.said.wait_for_playout()
    escalation.told = taken is not None and not escalation.said.interrupted


async def _outcome(state: CallState, rid: str, changed: asyncio.Event) -> dict[str, Any] | None:
    """The request once it has left pending, renewing the caller's presence meanwhile; None if the caller hung up first."""
    timing = state.timing
    now = time.monotonic()
    renew_at = now + timing.presence_seconds  # the request was opened with the caller on the line
    check_at = now + timing.poll_seconds  # the stream wakes this on connecting: no check needed before
    while not state.hung_up.is_set():
        now = time.monotonic()
        if now >= renew_at:
            renew_at = now + (timing.presence_seconds if await _renew_presence(state, rid) else timing.retry_seconds)
        if changed.is_set() or now >= check_at:
            changed.clear()  # before the read: a change during it wakes the next round
            request = await _read(state, rid)
            if request is not None and request["status"] != "pending":
                return request
            check_at = now + (timing.retry_seconds if request is None else timing.poll_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), max(0.0, min(renew_at, check_at) - time.monotonic()))
    return None


async def _renew_presence(state: CallState, rid: str) -> bool:
    try:
        await state.backend.set_presence(rid, on_line=True)
    except Exception as exc:  # the backend blinked: its lease outlives a few missed renewals
        log.warning("could not renew the caller's presence on %s: %s", rid, exc)
        return False
    return True


async def _read(state: CallState, rid: str) -> dict[str, Any] | None:
    try:
        return await state.backend.get_request(rid)
    except Exception as exc:
        log.warning("follow-up check of %s failed: %s", rid, exc)
        return None


def _outcome_words(request: dict[str, Any]) -> str:
    if request["status"] == "resolved" and request.get("answer"):
        return LIVE_ANSWER.format(answer=request["answer"])
    return LIVE_UNRESOLVED


def _watchers(state: CallState) -> list[asyncio.Task[None]]:
    return [e.watcher for e in state.escalations.values() if e.watcher is not None]


async def all_said(state: CallState, timeout: float) -> bool:
    """Wait (up to `timeout` s) until every question of this call has had its outcome said; True if so."""
    watchers = _watchers(state)
    if not watchers:
        return True
    _done, pending = await asyncio.wait(watchers, timeout=timeout)
    return not pending


async def end_call(session: AgentSession[CallState]) -> None:
    """The caller hung up: whatever the agent has not said goes out as a text; the transcript is kept.

    Safe after the session has closed (a worker's shutdown callback runs then)."""
    state = session.userdata
    state.hung_up.set()
    if state.changes is not None:
        state.changes.wake_all()
    # Let each watcher finish the call it is making (cut off mid-request, it could leave the
    # backend guessing); only one stuck for long is cancelled.
    watchers = _watchers(state)
    if watchers:
        _done, stuck = await asyncio.wait(watchers, timeout=WATCHER_GRACE_SECONDS)
        for watcher in stuck:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    if state.changes is not None:
        await state.changes.aclose()
    lines = transcript(session.history)
    for escalation in state.escalations.values():
        rid = escalation.request_id
        with call_log.concerning(rid):
            try:
                # The transcript first: an answered request takes it only while the call lasts.
                await state.backend.update_request(rid, transcript=lines)
                if not escalation.told:
                    # Presence off: from then on no take can succeed; then return any take the
                    # caller did not hear (one may have committed as the call was ending).
                    await state.backend.set_presence(rid, on_line=False)
                    await state.backend.give_back_follow_up(rid)
            except Exception:
                log.exception("could not close the call on help request %s", rid)
