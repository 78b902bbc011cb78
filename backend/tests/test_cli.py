"""`python -m app supervisors add | list | revoke`, run as a user would, against a temporary SQLite
database, and what a server on that database makes of the accounts."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.api.routes.events import RECHECK_SECONDS
from app.config import BACKEND_DIR
from tests.server_process import ServerProcess
from tests.support import make_settings, request_body, running_app, supervisors_command

TOKEN = re.compile(r"[0-9a-f]{16}\.[A-Za-z0-9_-]{43}")


def _db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'hitl.db'}"


def supervisors(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return supervisors_command(_db(tmp_path), *args)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_add_list_and_revoke_from_the_command_line(tmp_path: Path) -> None:
    added = supervisors(tmp_path, "add", "Priya")
    assert added.returncode == 0, added.stderr
    priya = added.stdout.strip()
    assert TOKEN.fullmatch(priya), "stdout holds the token alone, for TOKEN=$(...)"
    assert "shown only this once" in added.stderr and "auth is now on" in added.stderr
    bob = supervisors(tmp_path, "add", "Bob").stdout.strip()
    assert TOKEN.fullmatch(bob)

    taken = supervisors(tmp_path, "add", "priya")
    assert taken.returncode == 1 and "already a supervisor named priya" in taken.stderr
    reserved = supervisors(tmp_path, "add", "admin")
    assert reserved.returncode == 1 and "choose another name" in reserved.stderr

    listed = supervisors(tmp_path, "list")
    assert listed.returncode == 0
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["ID", "NAME", "CREATED", "STATUS"]
    assert [(row[1], row[-1]) for row in rows[1:]] == [("Priya", "active"), ("Bob", "active")]
    assert priya not in listed.stdout and bob not in listed.stdout
    bob_id = rows[2][0]

    async with running_app(make_settings(_db(tmp_path))) as api:
        assert (await api.get("/api/me", headers=bearer(priya))).json()["name"] == "Priya"
        # In a thread: the app's loops must keep running (and finish their writes) meanwhile.
        revoked = await asyncio.to_thread(supervisors, tmp_path, "revoke", "Priya")
        assert revoked.returncode == 0 and revoked.stdout.startswith("Revoked Priya (id ")
        # Another process revoked it: this one refuses it at once (no cache).
        assert (await api.get("/api/me", headers=bearer(priya))).status_code == 401
        assert (await api.get("/api/me", headers=bearer(bob))).status_code == 200
        assert (await asyncio.to_thread(supervisors, tmp_path, "revoke", bob_id)).returncode == 0
        assert (await api.get("/api/me", headers=bearer(bob))).status_code == 401

    missing = supervisors(tmp_path, "revoke", "Nobody")
    assert missing.returncode == 1 and "Nobody not found" in missing.stderr
    rows = supervisors(tmp_path, "list").stdout.splitlines()[1:]
    assert len(rows) == 2 and all(re.search(r" revoked \d{4}-\d\d-\d\d \d\d:\d\d UTC$", row) for row in rows)


def test_a_bare_supervisors_command_shows_its_usage(tmp_path: Path) -> None:
    bare = supervisors(tmp_path)
    assert bare.returncode == 2 and "add" in bare.stderr and "revoke" in bare.stderr


def test_accounts_alone_do_not_let_the_server_listen_beyond_loopback(tmp_path: Path) -> None:
    assert supervisors(tmp_path, "add", "Priya").returncode == 0
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_TOKEN", "AGENT_TOKEN")}
    env.update(HOST="0.0.0.0", PORT="8123", DATABASE_URL=_db(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "app"], cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "SUPERVISOR_TOKEN is not set" in proc.stderr


@pytest.mark.slow
def test_a_revoke_reaches_a_running_server_and_ends_its_event_streams(tmp_path: Path) -> None:
    priya = supervisors(tmp_path, "add", "Priya").stdout.strip()
    bob = supervisors(tmp_path, "add", "Bob").stdout.strip()
    server = ServerProcess(tmp_path).start()  # no SUPERVISOR_TOKEN: the accounts alone turn auth on
    try:
        assert httpx.get(server.base + "/api/help-requests", timeout=5).status_code == 401
        with httpx.stream("GET", server.base + "/api/events", headers=bearer(priya), timeout=10) as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: ready"
            assert supervisors(tmp_path, "revoke", "Priya").returncode == 0
            assert httpx.get(server.base + "/api/me", headers=bearer(priya), timeout=5).status_code == 401
            time.sleep(RECHECK_SECONDS)
            created = httpx.post(
                server.base + "/api/help-requests", json=request_body(), headers=bearer(bob), timeout=5
            )
            assert created.status_code == 201
            events = [line for line in lines if line.startswith("event:")]  # until the server ends the stream
        assert events == []
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["doctor", "--help"], 0, "usage: python -m app doctor"),
        (["livekit", "setup", "--help"], 0, "usage: python -m app livekit setup"),
        (["livekit", "setup", "--dry-run", "+14155550100"], 2, "set LIVEKIT_URL"),
        (["livekit"], 2, "required: action"),
    ],
)
def test_the_operator_commands_are_reached_through_python_m_app(argv: list[str], code: int, says: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    done = subprocess.run(
        [sys.executable, "-m", "app", *argv], cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == code and says in done.stdout + done.stderr, done.stdout + done.stderr
