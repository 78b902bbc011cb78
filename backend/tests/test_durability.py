"""Hard kills: a real server process killed with SIGKILL loses no event and no deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.services.outbox.delivery import LEASE_MARGIN_SECONDS
from tests.server_process import ServerProcess
from tests.support import WebhookReceiver, request_body

pytestmark = pytest.mark.slow


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
    # A kill can land between a send and its record: the delivery then waits out its lease
    # (the send's 2 s deadline + the margin) before it is tried again.
    server = ServerProcess(tmp_path, NOTIFY_WEBHOOK_URL=refusing_webhook.url, NOTIFY_TIMEOUT_SECONDS="2")
    server.start()
    try:
        rid = httpx.post(f"{server.base}/api/help-requests", json=request_body()).json()["id"]
        server.kill()
        assert not refusing_webhook.accepted(), "nothing may have been accepted before the kill"

        refusing_webhook.accepting = True
        server.start()
        assert wait_until(lambda: refusing_webhook.accepted("help_request.created"), 2 + LEASE_MARGIN_SECONDS + 5)
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
