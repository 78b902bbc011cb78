"""`doctor` against a real server process and stand-ins for LiveKit, an OpenAI-compatible endpoint, a
webhook receiver, Twilio, Slack and an SMTP server: all ok when wired right; each broken setting
named, and the exit code non-zero."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from app.config import BACKEND_DIR, Settings
from app.db import alembic_config
from app.ops import doctor, livekit_setup
from tests.ops.conftest import closed_port_url
from tests.ops.standins import LiveKitStandIn, ModelsStandIn
from tests.server_process import ServerProcess
from tests.stand_ins import SlackStandIn, SmtpStandIn
from tests.support import WebhookReceiver
from tests.twilio_stand_in import ACCOUNT_SID, AUTH_TOKEN, SALON_NUMBER, TwilioStandIn

pytestmark = pytest.mark.slow

SUPERVISOR = "s" * 32
AGENT = "a" * 32
MODEL_KEY = "sk-standin"
CHECK_NAMES = [check.name for check in doctor.CHECKS]


@dataclass
class Deployment:
    env: dict[str, str]
    server: ServerProcess
    webhook: WebhookReceiver
    tmp: Path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Everything a call needs, wired right: the API (auth on, one KB answer), LiveKit with the number
    set up by `livekit setup`, an LLM and speech endpoint, a webhook sink."""
    tmp = tmp_path_factory.mktemp("doctor")
    livekit = LiveKitStandIn()
    models = ModelsStandIn(MODEL_KEY, ["gpt-4o-mini", "gpt-4o-mini-transcribe", "gpt-4o-mini-tts"])
    webhook = WebhookReceiver()
    twilio, slack, smtp = TwilioStandIn(), SlackStandIn(), SmtpStandIn()
    server = ServerProcess(tmp, SUPERVISOR_TOKEN=SUPERVISOR, AGENT_TOKEN=AGENT).start()
    try:
        httpx.post(
            f"{server.base}/api/knowledge-base",
            json={"question": "Are you open on Sundays?", "answer": "Yes, 10 to 4."},
            headers={"Authorization": f"Bearer {SUPERVISOR}"},
            timeout=30,
        ).raise_for_status()
        env = {
            "DATABASE_URL": server.env["DATABASE_URL"],
            "HOST": "127.0.0.1",
            "SUPERVISOR_TOKEN": SUPERVISOR,
            "AGENT_TOKEN": AGENT,
            "HITL_URL": server.base,
            "LIVEKIT_URL": livekit.url,
            "LIVEKIT_API_KEY": livekit.api_key,
            "LIVEKIT_API_SECRET": livekit.api_secret,
            "LIVEKIT_AGENT_NAME": "frontdesk",
            "LLM_BASE_URL": models.url,
            "LLM_API_KEY": MODEL_KEY,
            "LLM_MODEL": "gpt-4o-mini",
            "VOICE_BASE_URL": models.url,
            "VOICE_API_KEY": MODEL_KEY,
            "NOTIFY_WEBHOOK_URL": webhook.url,
            "NOTIFY_WEBHOOK_SECRET": "hook-secret",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM": SALON_NUMBER,
            "TWILIO_API_BASE_URL": twilio.url,
            "PUBLIC_BASE_URL": "https://frontdesk.salon.example",
            "SLACK_WEBHOOK_URL": slack.url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "SMTP_STARTTLS": "false",
            "ALERT_EMAIL_FROM": "frontdesk@salon.example",
            "ALERT_EMAIL_TO": "owner@salon.example",
        }
        settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
        wanted = livekit_setup.Wanted(number="+14155550100", agent_name="frontdesk")
        asyncio.run(livekit_setup.setup(settings, wanted, dry_run=False))
        yield Deployment(env, server, webhook, tmp)
    finally:
        server.stop()
        for standin in (livekit, models, webhook, twilio, slack, smtp):
            standin.close()


def run_doctor(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, str]]:
    """Exit code, and each check's line by the check's name."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = doctor.main([])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(CHECK_NAMES), lines
    return code, dict(zip(CHECK_NAMES, lines, strict=True))


def test_a_deployment_wired_right_is_all_ok(deployment: Deployment) -> None:
    # The way an operator runs it: its own process, settings from an env file.
    env_file = deployment.tmp / "frontdesk.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in deployment.env.items()))
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    result = subprocess.run(
        [sys.executable, "-m", "app.ops.doctor", "--env-file", str(env_file)],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[0] for line in lines] == ["ok"] * len(CHECK_NAMES), lines
    assert [line.split()[1] for line in lines] == [name.split()[0] for name in CHECK_NAMES]
    assert "+14155550100 ring LIVEKIT_AGENT_NAME='frontdesk'" in result.stdout
    assert deployment.webhook.deliveries == [], "the webhook check sends no event"


def _migrated_to_previous(tmp: Path) -> str:
    cfg = alembic_config()
    previous = ScriptDirectory.from_config(cfg).get_revision("head").down_revision
    assert isinstance(previous, str)
    path = tmp / "behind.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, previous)
    engine.dispose()
    return f"sqlite+aiosqlite:///{path}"


# "closed": a loopback port nothing listens on; "behind": a database one migration short of head.
BROKEN = [
    pytest.param({"DATABASE_URL": "sqlite+aiosqlite:///{tmp}/missing.db"}, "DATABASE_URL", {"database"}, id="no-db"),
    pytest.param({"DATABASE_URL": "behind"}, "DATABASE_URL", {"database"}, id="db-behind-head"),
    pytest.param({"HOST": "0.0.0.0", "SUPERVISOR_TOKEN": ""}, "SUPERVISOR_TOKEN", {"tokens"}, id="open-bind"),
    pytest.param({"AGENT_TOKEN": "b" * 32}, "AGENT_TOKEN", {"backend", "knowledge base"}, id="agent-token"),
    pytest.param({"HITL_URL": "closed"}, "HITL_URL", {"backend", "knowledge base"}, id="hitl-url"),
    pytest.param({"LIVEKIT_URL": ""}, "LIVEKIT_URL", {"livekit"}, id="no-livekit"),
    pytest.param({"LIVEKIT_URL": "closed"}, "LIVEKIT_URL", {"livekit"}, id="livekit-url"),
    pytest.param({"LIVEKIT_API_SECRET": "x" * 40}, "LIVEKIT_API_SECRET", {"livekit"}, id="livekit-secret"),
    pytest.param({"LIVEKIT_AGENT_NAME": "someone-else"}, "LIVEKIT_AGENT_NAME", {"livekit"}, id="agent-name"),
    pytest.param({"LLM_BASE_URL": "", "LLM_API_KEY": ""}, "LLM_API_KEY", {"llm"}, id="no-llm"),
    pytest.param({"LLM_BASE_URL": "closed"}, "LLM_BASE_URL", {"llm"}, id="llm-url"),
    pytest.param({"LLM_API_KEY": "sk-wrong"}, "LLM_API_KEY", {"llm"}, id="llm-key"),
    pytest.param({"VOICE_BASE_URL": "closed"}, "VOICE_BASE_URL", {"speech"}, id="voice-url"),
    pytest.param({"VOICE_API_KEY": "sk-wrong"}, "VOICE_API_KEY", {"speech"}, id="voice-key"),
    pytest.param({"NOTIFY_WEBHOOK_URL": "closed"}, "NOTIFY_WEBHOOK_URL", {"webhook"}, id="webhook"),
    pytest.param({"TWILIO_AUTH_TOKEN": "f" * 32}, "TWILIO_AUTH_TOKEN", {"sms"}, id="twilio-token"),
    pytest.param({"TWILIO_API_BASE_URL": "closed"}, "TWILIO_API_BASE_URL", {"sms"}, id="twilio-url"),
    pytest.param({"SLACK_WEBHOOK_URL": "closed"}, "SLACK_WEBHOOK_URL", {"alerts"}, id="slack"),
    pytest.param({"SMTP_PORT": "closed-port"}, "SMTP_HOST", {"alerts"}, id="smtp"),
    pytest.param({"SMTP_STARTTLS": "true"}, "SMTP_STARTTLS", {"alerts"}, id="smtp-no-starttls"),
]


@pytest.mark.parametrize(("broken", "setting", "failing"), BROKEN)
def test_a_broken_setting_is_named(
    deployment: Deployment,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    broken: dict[str, str],
    setting: str,
    failing: set[str],
) -> None:
    env = dict(deployment.env)
    for name, value in broken.items():
        if value == "closed":
            value = closed_port_url("/v1" if name.endswith("BASE_URL") else "")
        elif value == "closed-port":
            value = closed_port_url("").rsplit(":", 1)[1]
        elif value == "behind":
            value = _migrated_to_previous(tmp_path)
        env[name] = value.format(tmp=tmp_path)
    code, lines = run_doctor(env, clean_env, capsys)
    assert code == 1, lines
    failed = {name for name, line in lines.items() if line.startswith("FAIL")}
    assert failed == failing, lines
    assert all(setting in lines[name] for name in failed), lines
    assert all(line.startswith("ok") for name, line in lines.items() if name not in failed), lines


@pytest.mark.parametrize(
    ("changed", "check", "setting"),
    [
        ({"LLM_MODEL": "gpt-9"}, "llm", "LLM_MODEL=gpt-9"),
        ({"NOTIFY_WEBHOOK_URL": ""}, "webhook", "NOTIFY_WEBHOOK_URL"),
        ({"NOTIFY_WEBHOOK_SECRET": ""}, "webhook", "NOTIFY_WEBHOOK_SECRET"),
        ({"HOST": "0.0.0.0", "AGENT_TOKEN": ""}, "tokens", "AGENT_TOKEN"),
        ({"PUBLIC_BASE_URL": ""}, "sms", "PUBLIC_BASE_URL"),
        (dict.fromkeys(("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"), ""), "sms", "TWILIO_ACCOUNT_SID"),
        (
            dict.fromkeys(("SLACK_WEBHOOK_URL", "SMTP_HOST", "ALERT_EMAIL_FROM", "ALERT_EMAIL_TO"), ""),
            "alerts",
            "SMTP_HOST",
        ),
    ],
)
def test_a_warning_is_named_and_does_not_fail(
    deployment: Deployment,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    changed: dict[str, str],
    check: str,
    setting: str,
) -> None:
    code, lines = run_doctor({**deployment.env, **changed}, clean_env, capsys)
    assert code == 0, lines
    assert lines[check].startswith("warn") and setting in lines[check], lines
    assert all(line.startswith("ok") for name, line in lines.items() if name != check), lines


def test_an_empty_knowledge_base_fails(
    deployment: Deployment, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    supervisor = {"Authorization": f"Bearer {SUPERVISOR}"}
    base = deployment.server.base
    entries = httpx.get(f"{base}/api/knowledge-base", headers=supervisor, timeout=10).json()
    for entry in entries:
        httpx.delete(f"{base}/api/knowledge-base/{entry['id']}", headers=supervisor, timeout=10).raise_for_status()
    try:
        code, lines = run_doctor(deployment.env, clean_env, capsys)
    finally:
        httpx.post(
            f"{base}/api/knowledge-base",
            json={"question": "Do you take walk-ins?", "answer": "Yes, when a chair is free."},
            headers=supervisor,
            timeout=30,
        ).raise_for_status()
    assert code == 1
    assert lines["knowledge base"].startswith("FAIL") and "KB_SEED_FILE" in lines["knowledge base"], lines


def test_invalid_settings_are_one_line(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("PORT", "not-a-port")
    assert doctor.main([]) == 2
    assert capsys.readouterr().err.startswith("doctor: invalid settings: PORT: ")
    assert doctor.main(["--env-file", "no-such.env"]) == 2
    assert capsys.readouterr().err == "doctor: cannot read the env file no-such.env\n"
