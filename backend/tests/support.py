"""Test helpers: running apps, a webhook receiver, polling."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from app.config import BACKEND_DIR, Settings
from app.main import create_app


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings isolated from the developer's environment and `.env`."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kb_seed_file": "",
        "supervisor_token": None,
        "agent_token": None,
        "notify_webhook_url": None,
        "notify_webhook_secret": None,
        "notify_retry_base_seconds": 0.2,
        "request_timeout_seconds": 1800,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_app(settings: Settings, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as client:
            client.app = app  # type: ignore[attr-defined]
            client.transport = transport  # type: ignore[attr-defined]
            yield client


async def eventually(check: Callable[[], Any], timeout: float = 5.0, step: float = 0.05) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout}s (last value: {value!r})"
            return value
        await asyncio.sleep(step)


@dataclass
class Delivery:
    event_id: str | None
    signature: str | None
    raw: bytes
    status: int
    at: float
    timestamped: str | None = None

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)


class StandInHandler(BaseHTTPRequestHandler):
    """The base of the tests' HTTP stand-ins: quiet, with one way to answer."""

    def reply(self, status: int, raw: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_args: Any) -> None:
        pass


@dataclass
class WebhookReceiver:
    """A real HTTP endpoint; answers 503 while not `accepting` or when `refuse` says so, and drips its
    answer a byte at a time for as long as `drip` says (a slow or hung receiver)."""

    refuse: Callable[[Delivery, list[Delivery]], bool] = lambda _d, _seen: False
    drip: Callable[[Delivery], float] = lambda _d: 0.0
    accepting: bool = True
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        lock = threading.Lock()

        class Handler(StandInHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                d = Delivery(
                    self.headers.get("X-Event-Id"),
                    self.headers.get("X-Signature"),
                    raw,
                    200,
                    time.time(),
                    self.headers.get("X-Signature-Timestamped"),
                )
                with lock:
                    if not receiver.accepting or receiver.refuse(d, list(receiver.deliveries)):
                        d.status = 503
                    receiver.deliveries.append(d)
                slow = receiver.drip(d)
                self.send_response(d.status)
                if slow:
                    self.send_header("Content-Length", str(int(slow * 4)))
                self.end_headers()
                for _ in range(int(slow * 4)):
                    time.sleep(0.25)
                    try:
                        self.wfile.write(b".")
                        self.wfile.flush()
                    except OSError:
                        return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self, type_: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries if d.status < 300 and (type_ is None or d.body["type"] == type_)]

    def signature_header_absent(self) -> bool:
        return all(d.signature is None for d in self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def request_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "customer_name": "Ana",
        "question": "Do you do balayage?",
        "channel": "phone",
        "customer_contact": "+14155550101",
    }
    body.update(overrides)
    return body


def supervisors_command(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m app supervisors ARGS` against `database_url`, run as an operator would."""
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERVISOR_TOKEN", "AGENT_TOKEN", "SUPERVISOR_NAME")}
    env.update(DATABASE_URL=database_url, KB_SEED_FILE="")
    return subprocess.run(
        [sys.executable, "-m", "app", "supervisors", *args],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
