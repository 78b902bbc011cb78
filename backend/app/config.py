"""Settings from the environment (and an optional `.env`); names match shared/CONTRACT.md."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

import phonenumbers
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.phones import e164

BACKEND_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BACKEND_DIR / "data"
PROMPTS_DIR = BACKEND_DIR / "prompts"
DEFAULT_KB_SEED = BACKEND_DIR / "seed" / "starter_kb.json"
DEFAULT_LEXICON = BACKEND_DIR / "seed" / "lexicon.json"

_DEV_PORTS = (3000, 4173, 5173, 8000, 8080)
DEFAULT_ORIGINS = [f"http://{host}:{port}" for host in ("localhost", "127.0.0.1") for port in _DEV_PORTS]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = f"sqlite+aiosqlite:///{DATA_DIR / 'hitl.db'}"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    request_timeout_seconds: float = Field(default=1800, gt=0)
    supervisor_token: str | None = None
    # The name SUPERVISOR_TOKEN acts under in timelines and the KB's audit trail (also the name of
    # whoever uses this machine's API while auth is off).
    supervisor_name: str = Field(default="admin", min_length=1, max_length=100, pattern=r"\S")
    agent_token: str | None = None
    # Requests per second the agent token may make (bursts of twice that); past it, 429 + Retry-After.
    agent_rate_per_second: float = Field(default=100.0, gt=0)

    notify_webhook_url: str | None = None
    notify_webhook_secret: str | None = None
    # Delay before the first retry; later retries double it, capped at notify_retry_max_seconds.
    notify_retry_base_seconds: float = Field(default=2.0, gt=0, le=5)
    notify_retry_max_seconds: float = Field(default=300.0, gt=0, le=300)
    # An event still failing this long after it was written is marked dead.
    notify_dead_after_seconds: float = Field(default=86400.0, gt=0)
    notify_timeout_seconds: float = Field(default=10.0, gt=0, le=10)

    # Supervisor alerts (new requests, reminders) on their own channels; customer events never go there.
    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    alert_email_from: str | None = None
    alert_email_to: str | None = None  # comma-separated addresses
    # Supervisors are reminded of a pending request this long before it times out; 0: never.
    remind_before_timeout_seconds: float = Field(default=300.0, ge=0)

    # Texts to and from callers through Twilio (services/outbox/sms.py, services/sms/).
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None  # the sending number (E.164) or sender ID
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    # Where numbers written without a country code are (ISO 3166 code).
    sms_default_region: str = "US"
    # The number callers can ring, said in a text whose answer is too long to send; TWILIO_FROM if unset.
    salon_phone: str | None = None
    # The on-call supervisor's phone: new requests and reminders by text (needs the Twilio settings).
    sms_on_call: str | None = None
    # The address clients reach this app at (behind a proxy it is not the one the app sees): Twilio
    # signs its webhook requests over it.
    public_base_url: str | None = None

    # Empty string means "load nothing"; unset means the salon's starter KB.
    kb_seed_file: str = str(DEFAULT_KB_SEED)
    kb_lexicon_file: str = str(DEFAULT_LEXICON)
    # Attach a new request to a pending one that asks the same question (one answer serves both).
    merge_duplicates: bool = True
    allowed_origins: list[str] = DEFAULT_ORIGINS
    salon_name: str = "Maple & Shear Salon"
    log_format: str = Field(default="text", pattern="^(text|json)$")

    # Optional LLM verifier for KB matches (any OpenAI-compatible endpoint).
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=4.0, gt=0, le=30)

    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None

    # The voice agent (app/livekit_worker.py) and the call simulator (`make call`).
    hitl_url: str = "http://127.0.0.1:8000"  # where the agent reaches this backend
    livekit_agent_name: str = ""  # empty: dispatched to every new room
    # The worker's health/readiness HTTP server (`start` mode); two workers on one host need two ports.
    worker_http_port: int = Field(default=8081, ge=0, le=65535)
    # Speech in and out through any OpenAI-compatible endpoint; unset base URL / key fall back to the LLM's.
    voice_base_url: str | None = None
    voice_api_key: str | None = None
    stt_model: str = "gpt-4o-mini-transcribe"
    tts_model: str = "gpt-4o-mini-tts"
    tts_voice: str = "alloy"

    @field_validator(
        "supervisor_token",
        "agent_token",
        "notify_webhook_url",
        "notify_webhook_secret",
        "llm_base_url",
        "llm_api_key",
        "livekit_url",
        "livekit_api_key",
        "livekit_api_secret",
        "voice_base_url",
        "voice_api_key",
        "slack_webhook_url",
        "smtp_host",
        "smtp_username",
        "smtp_password",
        "alert_email_from",
        "alert_email_to",
        "twilio_account_sid",
        "twilio_auth_token",
        "twilio_from",
        "twilio_messaging_service_sid",
        "salon_phone",
        "public_base_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _email_alerts_complete(self) -> Settings:
        # Half a mail set-up would fail every send for a day, quietly: refuse it at start instead.
        email = {
            "SMTP_HOST": self.smtp_host,
            "ALERT_EMAIL_FROM": self.alert_email_from,
            "ALERT_EMAIL_TO": self.alert_email_recipients,
        }
        if any(email.values()) and not all(email.values()):
            missing = ", ".join(name for name, value in email.items() if not value)
            raise ValueError(f"email alerts need SMTP_HOST, ALERT_EMAIL_FROM and ALERT_EMAIL_TO; missing {missing}")
        if bool(self.smtp_username) != bool(self.smtp_password):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD go together")
        return self

    @field_validator("sms_default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        # A wrong region would make every number written without a country code "not a phone number".
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region phone numbers know (an ISO 3166 code such as US or GB)")
        return value.upper()

    @model_validator(mode="after")
    def _sms_complete(self) -> Settings:
        # Half a Twilio set-up would fail every text for a day, quietly: refuse it at start instead.
        given = [self.twilio_account_sid, self.twilio_auth_token, self.twilio_from, self.twilio_messaging_service_sid]
        if any(given) and not self.sms_enabled:
            raise ValueError(
                "SMS needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID"
            )
        if self.sms_on_call and not self.sms_enabled:
            raise ValueError("SMS_ON_CALL needs the Twilio settings (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, a sender)")
        if self.sms_on_call and e164(self.sms_on_call, self.sms_default_region) is None:
            raise ValueError(f"SMS_ON_CALL {self.sms_on_call!r} is not a phone number")
        return self

    @property
    def sms_enabled(self) -> bool:
        sender = self.twilio_from or self.twilio_messaging_service_sid
        return bool(self.twilio_account_sid and self.twilio_auth_token and sender)

    @property
    def alert_email_recipients(self) -> list[str]:
        return [address.strip() for address in (self.alert_email_to or "").split(",") if address.strip()]

    @property
    def agent_bearer(self) -> str | None:
        """The agent's token; with only a supervisor token configured, that one."""
        return self.agent_token or self.supervisor_token

    def bind_is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
