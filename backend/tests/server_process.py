"""A real server process (`python -m app`) on a free port, for tests that need one: kills, browsers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.config import BACKEND_DIR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, tmp: Path, command: list[str] | None = None, **env: str) -> None:
        self.port = _free_port()
        self.command = command or [sys.executable, "-m", "app"]
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_TOKEN", "AGENT_TOKEN")}
        self.env.update(
            HOST="127.0.0.1",
            PORT=str(self.port),
            KB_SEED_FILE="",
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'hitl.db'}",
            NOTIFY_RETRY_BASE_SECONDS="0.2",
        )
        self.env.update(env)
        self.log = tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            [part.format(port=self.port) for part in self.command],
            cwd=BACKEND_DIR,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return self
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
