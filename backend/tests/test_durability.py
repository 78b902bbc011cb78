"""Hard kills: a real server process killed with SIGKILL loses no event and no deadline."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.config import BACKEND_DIR
from tests.support import WebhookReceiver, request_body

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, tmp: Path, **env: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_TOKEN", "AGENT_TOKEN")}
        self.env.update(
            HOST="127.0.0.1", PORT=str(self.port), KB_SEED_FILE="",
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'hitl.db'}", NOTIFY_RETRY_BASE_SECONDS="0.2", **env,
        )
        self.log = tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=BACKEND_DIR, env=self.env,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("server did not start: " + self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@pytest.fixture
def refusing_webhook() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(accepting=False)
    yield hook
    hook.close()


def wait_until(check: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def test_event_written_just_before_a_hard_kill_is_delivered_after_restart(
    tmp_path: Path, refusing_webhook: WebhookReceiver
) -> None:
    server = ServerProcess(tmp_path, NOTIFY_WEBHOOK_URL=refusing_webhook.url)
    server.start()
    try:
        rid = httpx.post(f"{server.base}/api/help-requests", json=request_body()).json()["id"]
        server.kill()
        assert not refusing_webhook.accepted(), "nothing may have been accepted before the kill"

        refusing_webhook.accepting = True
        server.start()
        assert wait_until(lambda: refusing_webhook.accepted("help_request.created"), 10)
        [delivered] = refusing_webhook.accepted("help_request.created")
        assert delivered.body["request"]["id"] == rid
        ids = {d.event_id for d in refusing_webhook.deliveries}
        assert ids == {delivered.event_id}, "retries after the restart keep the event id"
    finally:
        server.stop()


def test_deadline_passing_while_killed_is_honoured_after_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, REQUEST_TIMEOUT_SECONDS="2")
    server.start()
    try:
        rid = httpx.post(f"{server.base}/api/help-requests", json=request_body()).json()["id"]
        server.kill()
        time.sleep(2.5)
        server.start()
        assert wait_until(
            lambda: httpx.get(f"{server.base}/api/help-requests/{rid}").json()["status"] == "unresolved", 3
        )
    finally:
        server.stop()
