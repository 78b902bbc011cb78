"""Settings from the environment (and an optional `.env`); names match shared/CONTRACT.md."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def auth_enabled(self) -> bool:
        return self.supervisor_token is not None

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
