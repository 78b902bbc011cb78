"""`python -m app doctor`: is this deployment wired up? One line per check, `ok`, `warn` or `FAIL`,
each naming the setting to fix; exits 1 when something a call needs is missing.

Checks are small async functions of the settings, listed in CHECKS in the order they print; a new
one is a function and a line there. They run at once, each with a short timeout,
and only look: nothing is migrated, created or sent.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib
import httpx
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from livekit.api import LiveKitAPI, ServerError
from livekit.protocol.room import ListRoomsRequest
from livekit.protocol.sip import ListSIPDispatchRuleRequest, ListSIPInboundTrunkRequest, SIPDispatchRuleInfo
from sqlalchemy import make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.agent.backend_client import BackendClient
from app.config import Settings
from app.db import alembic_config
from app.ops import livekit_setup
from app.ops.settings import load_settings

PROG = "doctor"
# Seconds any one network call may wait; a whole check gets twice that, and they all run at once.
TIMEOUT = 5.0
OPENAI_URL = "https://api.openai.com/v1"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Result:
    status: Status
    detail: str


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Settings], Awaitable[Result]]
    # What to look at when the check cannot finish (no answer in time, an error nobody foresaw).
    settings: str


def ok(detail: str) -> Result:
    return Result(Status.OK, detail)


def warn(detail: str) -> Result:
    return Result(Status.WARN, detail)


def fail(detail: str) -> Result:
    return Result(Status.FAIL, detail)


def _origin(url: str) -> str:
    """scheme://host[:port] only: webhook and API URLs often carry a secret in their path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def check_database(settings: Settings) -> Result:
    url = make_url(settings.database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return fail("DATABASE_URL is an in-memory SQLite database: it starts empty every time; give it a file")
        # Opening a missing SQLite file would create it: look first.
        if not Path(url.database).is_file():
            return fail(f"no database file at {url.database}: fix DATABASE_URL, or start the API once (it migrates)")
    engine = create_async_engine(url, connect_args={"timeout": TIMEOUT})
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(_current_revisions)
    except Exception as exc:  # every driver has its own errors; all mean the same here
        return fail(f"cannot open DATABASE_URL={shown} ({_reason(exc)})")
    finally:
        await engine.dispose()
    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    at = ", ".join(sorted(current))
    if current == heads:
        return ok(f"{url.get_backend_name()} at migration head {at}")
    if not current:
        return fail(f"DATABASE_URL={shown} has no tables of ours: start the API once (it migrates at start)")
    if not all(_known(script, rev) for rev in current):
        return fail(f"DATABASE_URL={shown} is at {at}, which this code does not know: upgrade this checkout")
    return fail(
        f"DATABASE_URL={shown} is at {at}, head is {', '.join(sorted(heads))}: restart the API to migrate (back up first)"
    )


def _current_revisions(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


async def check_tokens(settings: Settings) -> Result:
    where = f"HOST={settings.host}"
    if settings.bind_is_loopback():
        auth = "auth on" if settings.supervisor_token else "auth off"
        return ok(f"{where} is loopback ({auth}): only this machine or its proxy reaches the API")
    if not settings.supervisor_token:
        return fail(
            f"{where} is beyond loopback and SUPERVISOR_TOKEN is not set: the API refuses to start; "
            "set SUPERVISOR_TOKEN and AGENT_TOKEN (openssl rand -hex 32)"
        )
    if not settings.agent_token:
        return warn(f"{where}: AGENT_TOKEN is not set, so the worker carries SUPERVISOR_TOKEN, which opens everything")
    if settings.agent_token == settings.supervisor_token:
        return warn(f"{where}: AGENT_TOKEN equals SUPERVISOR_TOKEN; give the worker its own (openssl rand -hex 32)")
    return ok(f"{where}: SUPERVISOR_TOKEN and AGENT_TOKEN set")


async def check_backend(settings: Settings) -> Result:
    """The worker's view: HITL_URL answers /health, and takes its token on an endpoint the agent uses."""
    backend = BackendClient(settings.hitl_url, settings.agent_bearer, timeout=TIMEOUT)
    try:
        await backend.ping()
        refusal = await backend.refusal()
    except httpx.HTTPStatusError as exc:
        return fail(
            f"HITL_URL={settings.hitl_url}: /health answered {exc.response.status_code} ({exc.response.text[:200]})"
        )
    except httpx.HTTPError as exc:
        return fail(f"cannot reach the backend at HITL_URL={settings.hitl_url} ({_reason(exc)})")
    finally:
        await backend.aclose()
    if refusal:
        return fail(f"the backend at HITL_URL={settings.hitl_url} refuses the worker: {refusal}")
    return ok(f"the worker reaches HITL_URL={settings.hitl_url} and its token is accepted")


async def check_knowledge_base(settings: Settings) -> Result:
    """What callers can be answered from, as the agent sees it (retired entries do not count)."""
    headers = {"Authorization": f"Bearer {settings.agent_bearer}"} if settings.agent_bearer else {}
    async with httpx.AsyncClient(base_url=settings.hitl_url.rstrip("/"), timeout=TIMEOUT, headers=headers) as http:
        try:
            response = await http.get("/api/knowledge-base")
        except httpx.HTTPError as exc:
            return fail(f"cannot read the KB at HITL_URL={settings.hitl_url} ({_reason(exc)})")
    if response.status_code in (401, 403):
        return fail(f"the backend refuses the KB to the worker's token ({response.status_code}): check AGENT_TOKEN")
    if response.status_code != 200:
        return fail(f"HITL_URL={settings.hitl_url}: the KB answered {response.status_code}")
    entries = len(response.json())
    if not entries:
        return fail(
            "the knowledge base is empty: every question would go to a supervisor; "
            "add answers in the console, or set KB_SEED_FILE and restart the API on an empty database"
        )
    return ok(f"{entries} answers in the knowledge base")


async def check_livekit(settings: Settings) -> Result:
    missing = livekit_setup.missing_credentials(settings)
    if missing:
        return fail(f"{', '.join(missing)} not set: the worker cannot take calls")
    try:
        async with livekit_setup.connect(settings, timeout=TIMEOUT) as api:
            await api.room.list_rooms(ListRoomsRequest())
            wiring = await _phone_wiring(api, settings.livekit_agent_name)
    except livekit_setup.LIVEKIT_ERRORS as exc:
        return fail(livekit_setup.describe_failure(exc, settings.livekit_url))
    return wiring


async def _phone_wiring(api: LiveKitAPI, agent_name: str) -> Result:
    """Which phone numbers ring this worker (credentials already accepted)."""
    try:
        trunks = (await api.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())).items
        rules = (await api.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())).items
    except ServerError as exc:
        return warn(
            f"credentials accepted; cannot list SIP dispatch rules ({exc.code}: {exc.message}): is LiveKit SIP set up?"
        )
    numbers = {t.sip_trunk_id: list(t.numbers) for t in trunks}
    ours = [r for r in rules if _dispatches_agent(r, agent_name)]
    if not ours:
        return fail(
            f"credentials accepted, but no SIP dispatch rule sends calls to LIVEKIT_AGENT_NAME={agent_name!r}: "
            "run `python -m app livekit setup +<number>`"
        )
    rung = sorted({n for r in ours for t in r.trunk_ids for n in numbers.get(t, [])})
    reach = ", ".join(rung) if rung else "calls on any trunk"
    worker = f"LIVEKIT_AGENT_NAME={agent_name!r}" if agent_name else "every worker (LIVEKIT_AGENT_NAME is empty)"
    return ok(f"credentials accepted; {reach} ring {worker}")


def _dispatches_agent(rule: SIPDispatchRuleInfo, agent_name: str) -> bool:
    """Whether calls matched by `rule` get this worker."""
    if not agent_name:
        # A worker without a name is dispatched to every new room; any rule that makes rooms will do.
        return True
    return any(agent.agent_name == agent_name for agent in rule.room_config.agents)


def _listed(model: str, ids: set[str]) -> bool:
    # Ollama lists "llama3.1:latest" for "llama3.1".
    return model in ids or f"{model}:latest" in ids


async def _models_endpoint(
    base_url: str, key: str | None, *, url_setting: str, key_setting: str, models: dict[str, str]
) -> Result:
    """GET {base_url}/models as the OpenAI client would, and whether it lists `models` (setting: model)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=headers) as http:
        try:
            response = await http.get(f"{base_url.rstrip('/')}/models")
        except httpx.HTTPError as exc:
            return fail(f"cannot reach {base_url} ({_reason(exc)}): check {url_setting}")
    if response.status_code in (401, 403):
        return fail(f"{base_url} refused {key_setting} ({response.status_code})")
    if response.status_code != 200:
        return fail(f"{base_url}/models answered {response.status_code}: check {url_setting}")
    try:
        ids = {str(m.get("id")) for m in response.json().get("data", [])}
    except (ValueError, AttributeError):
        return fail(f"{base_url}/models is not an OpenAI-compatible model list: check {url_setting}")
    absent = [f"{name}={model}" for name, model in models.items() if not _listed(model, ids)]
    if absent:
        return warn(f"{base_url} answers, but does not list {', '.join(absent)}")
    return ok(f"{base_url} answers and lists {', '.join(models.values())}")


async def check_llm(settings: Settings) -> Result:
    if not (settings.llm_base_url or settings.llm_api_key):
        return fail("neither LLM_API_KEY (OpenAI) nor LLM_BASE_URL (an OpenAI-compatible server) is set")
    return await _models_endpoint(
        settings.llm_base_url or OPENAI_URL,
        settings.llm_api_key,
        url_setting="LLM_BASE_URL",
        key_setting="LLM_API_KEY",
        models={"LLM_MODEL": settings.llm_model},
    )


async def check_speech(settings: Settings) -> Result:
    """Speech goes where the worker sends it: VOICE_BASE_URL, else the LLM's endpoint (livekit_worker.py)."""
    if not (settings.voice_base_url or settings.voice_api_key or settings.llm_base_url or settings.llm_api_key):
        return fail("no speech endpoint: set VOICE_API_KEY or VOICE_BASE_URL (or the LLM's, which speech defaults to)")
    url_setting = "VOICE_BASE_URL" if settings.voice_base_url else "VOICE_BASE_URL (unset: LLM_BASE_URL)"
    key = settings.voice_api_key or (None if settings.voice_base_url else settings.llm_api_key)
    key_setting = "VOICE_API_KEY" if settings.voice_api_key or settings.voice_base_url else "LLM_API_KEY"
    return await _models_endpoint(
        settings.voice_base_url or settings.llm_base_url or OPENAI_URL,
        key,
        url_setting=url_setting,
        key_setting=key_setting,
        models={"STT_MODEL": settings.stt_model, "TTS_MODEL": settings.tts_model},
    )


async def check_webhook(settings: Settings) -> Result:
    url = settings.notify_webhook_url
    if not url:
        return warn("NOTIFY_WEBHOOK_URL is not set: notification events go to the server log only")
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        try:
            # A HEAD, not an event: any answer at all means the sink is there.
            response = await http.head(url)
        except httpx.HTTPError as exc:
            return fail(f"cannot reach NOTIFY_WEBHOOK_URL ({_origin(url)}: {_reason(exc)})")
    if not settings.notify_webhook_secret:
        return warn(f"{_origin(url)} answers, but NOTIFY_WEBHOOK_SECRET is not set: events go unsigned")
    return ok(f"NOTIFY_WEBHOOK_URL answers ({_origin(url)}, HEAD {response.status_code})")


async def check_sms(settings: Settings) -> Result:
    if not settings.sms_enabled:
        return warn("Twilio is not set up (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM): callers get no texts")
    sid, token = settings.twilio_account_sid or "", settings.twilio_auth_token
    url = f"{settings.twilio_api_base_url.rstrip('/')}/2010-04-01/Accounts/{sid}.json"
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        try:
            # The account itself: proves the credentials and sends nothing.
            response = await http.get(url, auth=(sid, token.get_secret_value() if token else ""))
        except httpx.HTTPError as exc:
            return fail(f"cannot reach Twilio at TWILIO_API_BASE_URL ({_origin(url)}: {_reason(exc)})")
    if response.status_code in (401, 403):
        return fail("Twilio refuses TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN")
    if response.status_code >= 400:
        return fail(f"Twilio answered HTTP {response.status_code} for TWILIO_ACCOUNT_SID")
    if not settings.public_base_url:
        return warn(
            "Twilio takes the credentials, but PUBLIC_BASE_URL is not set: behind a proxy, the signature "
            "of every text a caller sends will not match and the text is refused"
        )
    return ok(
        f"Twilio takes the credentials; callers' replies at {settings.public_base_url.rstrip('/')}/api/sms/inbound"
    )


async def _smtp_reachable(settings: Settings) -> str | None:
    """Why email alerts cannot go out, or None: a connection and a greeting, no login, no mail."""
    smtp = aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port, timeout=TIMEOUT, start_tls=False)
    try:
        await smtp.connect()
        await smtp.ehlo()
        if settings.smtp_starttls and not smtp.supports_extension("starttls"):
            return f"SMTP_HOST {settings.smtp_host} offers no STARTTLS and SMTP_STARTTLS is on: no alert would go"
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return f"cannot reach SMTP_HOST {settings.smtp_host}:{settings.smtp_port} ({_reason(exc)})"
    return None


async def check_alerts(settings: Settings) -> Result:
    reached, problems = [], []
    if settings.slack_webhook_url:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            try:
                await http.head(settings.slack_webhook_url)  # any answer: the hook's host is there
                reached.append("Slack")
            except httpx.HTTPError as exc:
                problems.append(
                    f"cannot reach SLACK_WEBHOOK_URL ({_origin(settings.slack_webhook_url)}: {_reason(exc)})"
                )
    if settings.smtp_host:
        why = await _smtp_reachable(settings)
        if why is None:
            reached.append("email")
        else:
            problems.append(why)
    if settings.sms_on_call:
        reached.append("text to SMS_ON_CALL (see the sms line)")
    if problems:
        return fail("; ".join(problems))
    if not reached:
        return warn("supervisors hear of new requests in the console only (SLACK_WEBHOOK_URL, SMTP_HOST, SMS_ON_CALL)")
    return ok("supervisor alerts go by " + ", ".join(reached))


CHECKS: list[Check] = [
    Check("database", check_database, "DATABASE_URL"),
    Check("tokens", check_tokens, "HOST, SUPERVISOR_TOKEN, AGENT_TOKEN"),
    Check("backend", check_backend, "HITL_URL"),
    Check("knowledge base", check_knowledge_base, "HITL_URL"),
    Check("livekit", check_livekit, "LIVEKIT_URL"),
    Check("llm", check_llm, "LLM_BASE_URL"),
    Check("speech", check_speech, "VOICE_BASE_URL"),
    Check("webhook", check_webhook, "NOTIFY_WEBHOOK_URL"),
    Check("sms", check_sms, "TWILIO_ACCOUNT_SID, TWILIO_API_BASE_URL"),
    Check("alerts", check_alerts, "SLACK_WEBHOOK_URL, SMTP_HOST"),
]


async def _run_one(check: Check, settings: Settings) -> Result:
    try:
        async with asyncio.timeout(TIMEOUT * 2):
            return await check.run(settings)
    except TimeoutError:
        return fail(f"no answer within {TIMEOUT * 2:g} s: check {check.settings}")
    except Exception as exc:  # one broken check must not hide the others' lines
        return fail(f"{type(exc).__name__}: {_reason(exc)}: check {check.settings}")


async def run_checks(settings: Settings, checks: Sequence[Check]) -> list[Result]:
    return list(await asyncio.gather(*(_run_one(check, settings) for check in checks)))


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app doctor",
        description="Check this deployment's wiring: database, tokens, backend, knowledge base, LiveKit, "
        "LLM, speech, webhook. Changes nothing; exits 1 when something a call needs is missing.",
    )
    parser.add_argument("--env-file", help="read settings from this file too (the services' EnvironmentFile)")
    args = parser.parse_args(argv)
    settings = load_settings(PROG, args.env_file)
    if settings is None:
        return 2
    results = asyncio.run(run_checks(settings, CHECKS))
    width = max(len(check.name) for check in CHECKS)
    for check, result in zip(CHECKS, results, strict=True):
        print(f"{result.status.value:<4}  {check.name:<{width}}  {result.detail}")
    return 1 if any(result.status is Status.FAIL for result in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
