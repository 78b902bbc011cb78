"""The LiveKit worker: the receptionist answering real calls (phone through LiveKit SIP, or web).

    python -m app.livekit_worker dev      # development: connects to LIVEKIT_URL, reloads on change
    python -m app.livekit_worker start    # production
    python -m app.livekit_worker console  # talk to it with your microphone, no LiveKit server

Speech-to-text, the LLM and text-to-speech go through OpenAI-compatible endpoints (OpenAI itself, or
a local server via LLM_BASE_URL / VOICE_BASE_URL); Silero VAD ships inside its wheel. The agent
reaches this backend at HITL_URL with AGENT_TOKEN.
"""

from __future__ import annotations

import logging
import sys

from livekit import rtc
from livekit.agents import NOT_GIVEN, AgentServer, AgentSession, JobContext, JobProcess, cli
from livekit.plugins import openai, silero

from app.agent import call_log, follow_up
from app.agent.backend_client import BackendClient
from app.agent.call_state import Caller, CallState
from app.agent.receptionist import Receptionist, load_instructions
from app.config import Settings

log = logging.getLogger("app.livekit_worker")

# Commands that connect to a LiveKit server (console mode runs locally).
_NEEDS_LIVEKIT = ("dev", "start", "connect")


def missing_settings(settings: Settings, command: str) -> list[str]:
    """What the worker needs for `command` and does not have, in the words of the environment variables."""
    missing = []
    if command in _NEEDS_LIVEKIT:
        for name in ("livekit_url", "livekit_api_key", "livekit_api_secret"):
            if not getattr(settings, name):
                missing.append(f"{name.upper()} (your LiveKit server or LiveKit Cloud project)")
    if not (settings.llm_base_url or settings.llm_api_key):
        missing.append("LLM_API_KEY (for OpenAI) or LLM_BASE_URL (any OpenAI-compatible server) for the LLM")
    if not (settings.voice_base_url or settings.voice_api_key or settings.llm_base_url or settings.llm_api_key):
        missing.append("VOICE_API_KEY or VOICE_BASE_URL for speech (defaults to the LLM's)")
    return missing


def build_session(settings: Settings, vad: silero.VAD, state: CallState) -> AgentSession[CallState]:
    # Local OpenAI-compatible servers take no key, but the OpenAI client insists on one.
    placeholder = "no-key"
    llm_url = settings.llm_base_url or NOT_GIVEN
    llm_key = settings.llm_api_key or (placeholder if settings.llm_base_url else NOT_GIVEN)
    voice_url = settings.voice_base_url or llm_url
    voice_key = settings.voice_api_key or (placeholder if settings.voice_base_url else llm_key)
    return AgentSession(
        userdata=state,
        stt=openai.STT(model=settings.stt_model, base_url=voice_url, api_key=voice_key, use_realtime=False),
        llm=openai.LLM(model=settings.llm_model, base_url=llm_url, api_key=llm_key),
        tts=openai.TTS(model=settings.tts_model, voice=settings.tts_voice, base_url=voice_url, api_key=voice_key),
        vad=vad,
        max_tool_steps=3,
    )


def caller_of(participant: rtc.RemoteParticipant) -> Caller:
    """Caller ID for phone calls (LiveKit SIP puts the number in the participant's attributes)."""
    if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
        number = participant.attributes.get("sip.phoneNumber") or None
        return Caller(name=None, contact=number, channel="phone")
    return Caller(name=participant.name or None, contact=None, channel="web")


def _prewarm(proc: JobProcess) -> None:
    proc.userdata["vad"] = silero.VAD.load()


_settings = Settings()
server = AgentServer(setup_fnc=_prewarm, port=_settings.worker_http_port)


@server.rtc_session(agent_name=_settings.livekit_agent_name)
async def receptionist_call(ctx: JobContext) -> None:
    settings = Settings()
    call_log.start_call(ctx.room.name)
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    log.info("call started")
    backend = BackendClient(settings.hitl_url, settings.agent_bearer)
    state = CallState(backend=backend, caller=caller_of(participant), salon_name=settings.salon_name)
    session = build_session(settings, ctx.proc.userdata["vad"], state)

    async def hang_up() -> None:
        # Shutdown callbacks run outside the call's task, so its log context is set again.
        call_log.start_call(ctx.room.name)
        await follow_up.end_call(session)
        await backend.aclose()
        log.info("call ended")

    ctx.add_shutdown_callback(hang_up)
    await session.start(agent=Receptionist(instructions=load_instructions()), room=ctx.room)


def main(argv: list[str]) -> int:
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command and not {"-h", "--help"} & set(argv):
        missing = missing_settings(Settings(), command)
        if missing:
            print(
                f"livekit_worker: cannot `{command}` without these settings (environment or backend/.env):",
                file=sys.stderr,
            )
            for item in missing:
                print(f"  - {item}", file=sys.stderr)
            print("To try the receptionist with none of them, run `make call`.", file=sys.stderr)
            return 2
    cli.run_app(server)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
