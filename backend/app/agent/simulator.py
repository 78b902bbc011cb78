"""`make call`: a phone call with the receptionist as text in the terminal (shared/CONTRACT.md).

The same `Receptionist`, tools and `AgentSession` as a real call, text only, with the local
responder in place of the cloud LLM; nothing external but the backend at HITL_URL.

Non-interactive: SAY='question' [WAIT=seconds] [CALLER=name] [CONTACT=number]. Interactive (no SAY):
type as the caller; the supervisor's answer is said the moment it arrives; Ctrl-D or "bye" hangs up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import httpx
from livekit.agents import AgentSession, llm
from livekit.agents.voice.events import ConversationItemAddedEvent

from app.agent import follow_up
from app.agent.backend_client import BackendClient
from app.agent.call_state import Caller, CallState
from app.agent.local_responder import LocalResponder
from app.agent.receptionist import Receptionist, load_instructions
from app.config import Settings

DEFAULT_WAIT_SECONDS = 60.0


def _print_agent_lines(event: ConversationItemAddedEvent) -> None:
    item = event.item
    if isinstance(item, llm.ChatMessage) and item.role == "assistant" and item.text_content:
        # One line per utterance, whatever the text holds: scripts read lines starting "agent: ".
        print("agent: " + " ".join(item.text_content.split()), flush=True)


async def _read_line(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


async def call(
    *,
    base_url: str,
    token: str | None,
    salon_name: str,
    caller: Caller,
    say: str | None,
    wait: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    backend = BackendClient(base_url, token, transport=transport)
    try:
        try:
            await backend.ping()
        except Exception as exc:
            print(
                f"call: no Frontdesk backend at {base_url} ({exc}); start it with `make run` or point HITL_URL at it",
                file=sys.stderr,
            )
            return 1
        refusal = await backend.refusal()
        if refusal is not None:
            print(f"call: the backend at {base_url} refuses the agent: {refusal}", file=sys.stderr)
            return 1
        state = CallState(backend=backend, caller=caller, salon_name=salon_name)
        agent = Receptionist(instructions=load_instructions())
        session = AgentSession(
            userdata=state,
            llm=LocalResponder(salon_name=salon_name),
            vad=None,
            turn_handling={"turn_detection": None},
            user_away_timeout=None,
            max_tool_steps=3,
        )
        session.on("conversation_item_added", _print_agent_lines)
        await session.start(agent, record=False)
        try:
            if agent.greeted is not None:
                await agent.greeted.wait_for_playout()
            if say is not None:
                await session.run(user_input=say)
                if state.escalations and not await follow_up.all_said(state, wait):
                    print(
                        f"(no answer from a supervisor within {wait:g} s: the caller will be texted when one comes)",
                        flush=True,
                    )
            else:
                await _converse(session)
        finally:
            await follow_up.end_call(session)
            await session.aclose()
        return 0
    finally:
        await backend.aclose()


async def _converse(session: AgentSession[CallState]) -> None:
    print("(you are the caller; Ctrl-D or 'bye' hangs up)", flush=True)
    while True:
        line = await _read_line("")
        if line is None:
            return
        if not line.strip():
            continue
        await session.run(user_input=line)
        if line.strip().lower().rstrip(".!") in ("bye", "goodbye"):
            return


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("CALL_LOG_LEVEL", "WARNING"),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    settings = Settings()
    say = os.environ.get("SAY") or None
    try:
        wait = float(os.environ.get("WAIT") or DEFAULT_WAIT_SECONDS)
    except ValueError:
        print(f"call: WAIT must be a number of seconds, not {os.environ['WAIT']!r}", file=sys.stderr)
        return 2
    caller = Caller(name=os.environ.get("CALLER") or None, contact=os.environ.get("CONTACT") or None)
    return asyncio.run(
        call(
            base_url=settings.hitl_url,
            token=settings.agent_bearer,
            salon_name=settings.salon_name,
            caller=caller,
            say=say,
            wait=max(0.0, wait),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
