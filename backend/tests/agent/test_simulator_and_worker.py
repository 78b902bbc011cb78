"""`make call`'s simulator against a running test app, and the LiveKit worker's command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from livekit import rtc
from livekit.plugins import openai, silero

from app.agent import simulator
from app.agent.backend_client import BackendClient
from app.agent.call_state import Caller, CallState
from app.config import BACKEND_DIR, Settings
from app.livekit_worker import build_session, caller_of, missing_settings
from tests.agent.conftest import SALON, SUNDAY_A, SUNDAY_Q
from tests.agent.streaming_asgi import StreamingASGITransport
from tests.server_process import ServerProcess
from tests.support import eventually, make_settings, running_app


def _agent_lines(out: str) -> list[str]:
    return [line.removeprefix("agent: ") for line in out.splitlines() if line.startswith("agent: ")]


async def _call(transport: httpx.AsyncBaseTransport, say: str, wait: float = 5, caller: Caller | None = None) -> int:
    return await simulator.call(
        base_url="http://127.0.0.1",
        token=None,
        salon_name=SALON,
        caller=caller or Caller("Maya", "+14155550123"),
        say=say,
        wait=wait,
        transport=transport,
    )


async def test_kb_question_is_answered_in_one_line(
    transport: StreamingASGITransport, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _call(transport, SUNDAY_Q) == 0
    lines = _agent_lines(capsys.readouterr().out)
    assert lines[0].startswith("Thank you for calling") and lines[-1] == SUNDAY_A


async def test_answer_given_while_the_call_waits_is_printed(
    salon_client: httpx.AsyncClient, transport: StreamingASGITransport, capsys: pytest.CaptureFixture[str]
) -> None:
    question = "Do you offer Vexlo scalp treatments?"
    call = asyncio.create_task(_call(transport, question, wait=20))
    pending = await eventually(lambda: _pending(salon_client, question), timeout=10)
    r = await salon_client.post(f"/api/help-requests/{pending['id']}/response", json={"answer": "Yes, for $55."})
    assert r.status_code == 200
    assert await asyncio.wait_for(call, 20) == 0
    lines = _agent_lines(capsys.readouterr().out)
    assert lines[-1] == "Good news — my supervisor says: Yes, for $55."

    # The next caller's paraphrase is answered from what was learned, with no new request.
    assert await _call(transport, "Do you offer Vexlo scalp treatments", caller=Caller("Noor", "+14155550999")) == 0
    assert _agent_lines(capsys.readouterr().out)[-1] == "Yes, for $55."
    assert len((await salon_client.get("/api/help-requests")).json()) == 1


async def _pending(salon_client: httpx.AsyncClient, question: str) -> dict | None:
    rows = (await salon_client.get("/api/help-requests", params={"status": "pending"})).json()
    return next((r for r in rows if r["question"] == question), None)


async def test_no_answer_within_wait_ends_the_call_cleanly(
    salon_client: httpx.AsyncClient, transport: StreamingASGITransport, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _call(transport, "Do you offer Vexlo scalp treatments?", wait=0.3) == 0
    [req] = (await salon_client.get("/api/help-requests")).json()
    assert req["status"] == "pending" and req["caller_on_line_until"] is None
    assert "no answer from a supervisor within 0.3 s: the caller will be texted" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("token", "says"),
    [(None, "no token was given: set AGENT_TOKEN"), ("wrong", "AGENT_TOKEN is not the server's agent token")],
)
async def test_a_backend_with_auth_on_says_what_token_is_missing(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], token: str | None, says: str
) -> None:
    settings = make_settings(sqlite_url, supervisor_token="s" * 24, agent_token="a" * 24)
    async with running_app(settings) as app:
        code = await simulator.call(
            base_url="http://127.0.0.1",
            token=token,
            salon_name=SALON,
            caller=Caller(),
            say="Do you do perms?",
            wait=0,
            transport=app.transport,
        )  # type: ignore[attr-defined]
    err = capsys.readouterr().err  # the in-process server logs here too
    [said] = [line for line in err.splitlines() if line.startswith("call:")]
    assert code == 1 and says in said and "Traceback" not in err


async def test_no_backend_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = await simulator.call(
        base_url="http://127.0.0.1:9", token=None, salon_name=SALON, caller=Caller(), say="hi", wait=0
    )
    assert code == 1
    assert "no Frontdesk backend at http://127.0.0.1:9" in capsys.readouterr().err


def _worker(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "LLM_", "VOICE_"))}
    return subprocess.run(
        [sys.executable, "-m", "app.livekit_worker", *args],
        cwd=BACKEND_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_worker_help_works_offline() -> None:
    done = _worker("--help")
    assert done.returncode == 0, done.stderr
    assert "dev" in done.stdout and "start" in done.stdout


def test_worker_refuses_to_start_without_its_settings() -> None:
    done = _worker("dev")
    assert done.returncode == 2
    assert "LIVEKIT_URL" in done.stderr and "LLM_API_KEY" in done.stderr and "make call" in done.stderr


def test_console_mode_needs_no_livekit_server() -> None:
    settings = Settings(_env_file=None, llm_api_key="k")
    assert missing_settings(settings, "console") == []
    assert any("LIVEKIT_URL" in m for m in missing_settings(settings, "start"))


async def test_worker_builds_its_voice_pipeline_offline() -> None:
    settings = Settings(_env_file=None, llm_base_url="http://127.0.0.1:9/v1", llm_model="local-model")
    state = CallState(backend=BackendClient("http://127.0.0.1:9", None), caller=Caller(), salon_name=SALON)
    session = build_session(settings, silero.VAD.load(), state)
    await state.backend.aclose()
    assert session.userdata is state
    assert isinstance(session.stt, openai.STT) and isinstance(session.tts, openai.TTS)
    assert isinstance(session.llm, openai.LLM) and session.llm.model == "local-model"


def test_phone_callers_are_known_by_their_caller_id() -> None:
    sip = SimpleNamespace(
        kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
        name="Phone +14155550123",
        attributes={"sip.phoneNumber": "+14155550123"},
    )
    assert caller_of(sip) == Caller(name=None, contact="+14155550123", channel="phone")  # type: ignore[arg-type]
    web = SimpleNamespace(kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD, name="Maya", attributes={})
    assert caller_of(web) == Caller(name="Maya", contact=None, channel="web")  # type: ignore[arg-type]


def test_make_call_passes_any_text_through(tmp_path: Path) -> None:
    """`make call SAY='Is a perm $90?'`: make must not expand `$9` on the way."""
    question = "Is a perm $90? It's 100% my $(budget)"
    server = ServerProcess(tmp_path).start()
    try:
        env = {**server.env, "HITL_URL": server.base}
        done = subprocess.run(
            ["make", "-s", "call", f"SAY={question}", "WAIT=0"],
            cwd=BACKEND_DIR.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        [asked] = httpx.get(f"{server.base}/api/help-requests").json()
    finally:
        server.stop()
    assert asked["question"] == question
