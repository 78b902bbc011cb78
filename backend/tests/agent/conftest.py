"""A receptionist in a text-only AgentSession against a running test app: no LiveKit, no network."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from livekit.agents import AgentSession, llm

from app.agent import follow_up
from app.agent.backend_client import BackendClient
from app.agent.call_state import Caller, CallState, FollowUpTiming
from app.agent.local_responder import LocalResponder, ScriptedLLM
from app.agent.receptionist import Receptionist, load_instructions
from tests.agent.streaming_asgi import StreamingASGITransport
from tests.support import make_settings, running_app

SALON = "Maple & Shear Salon"
SUNDAY_Q = "What are your Sunday hours?"
SUNDAY_A = "We're open 10 to 4 on Sundays."
CUT_Q = "How much is a women's cut?"
CUT_A = "A women's cut is $65, including wash and style."


@dataclass
class Call:
    session: AgentSession[CallState]
    agent: Receptionist
    state: CallState
    salon_client: httpx.AsyncClient

    def said(self) -> list[str]:
        return [
            item.text_content or ""
            for item in self.session.history.items
            if isinstance(item, llm.ChatMessage) and item.role == "assistant"
        ]

    async def requests(self) -> list[dict]:
        return (await self.salon_client.get("/api/help-requests")).json()


@pytest.fixture
async def salon_client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(sqlite_url)) as client:
        for question, answer in ((SUNDAY_Q, SUNDAY_A), (CUT_Q, CUT_A)):
            r = await client.post("/api/knowledge-base", json={"question": question, "answer": answer})
            assert r.status_code == 201, r.text
        yield client


@pytest.fixture
def transport(salon_client: httpx.AsyncClient) -> StreamingASGITransport:
    """The test app as the agent reaches it, its event stream streaming."""
    return StreamingASGITransport(salon_client.transport.app)  # type: ignore[attr-defined]


@pytest.fixture
def open_call(salon_client: httpx.AsyncClient, transport: StreamingASGITransport):
    @asynccontextmanager
    async def start(
        model: llm.LLM | None = None,
        caller: Caller | None = None,
        wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
        timing: FollowUpTiming | None = None,
    ) -> AsyncIterator[Call]:
        backend = BackendClient("http://127.0.0.1", None, transport=wrap(transport) if wrap else transport)
        state = CallState(
            backend=backend,
            caller=caller or Caller(name="Maya", contact="+14155550123"),
            salon_name=SALON,
            timing=timing or FollowUpTiming(presence_seconds=0.2),
        )
        agent = Receptionist(instructions=load_instructions())
        session = AgentSession(
            userdata=state,
            llm=model or LocalResponder(salon_name=SALON),
            vad=None,
            turn_handling={"turn_detection": None},
            user_away_timeout=None,
            max_tool_steps=3,
        )
        await session.start(agent, record=False)
        assert agent.greeted is not None
        await agent.greeted.wait_for_playout()
        try:
            yield Call(session=session, agent=agent, state=state, salon_client=salon_client)
        finally:
            await follow_up.end_call(session)
            await session.aclose()
            await backend.aclose()

    return start


def script(*steps: Callable[[llm.ChatContext], llm.ChoiceDelta] | llm.ChoiceDelta) -> ScriptedLLM:
    """A model that plays `steps` in order, one per request, then repeats the last."""
    played = []

    def next_step(chat_ctx: llm.ChatContext) -> llm.ChoiceDelta:
        step = steps[min(len(played), len(steps) - 1)]
        played.append(step)
        return step(chat_ctx) if callable(step) else step

    return ScriptedLLM(next_step)
