"""Hard kills: reminders that come due while the server is killed go out once after the restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_process import ServerProcess
from tests.stand_ins import SlackStandIn
from tests.support import request_body
from tests.test_durability import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.close()


def test_reminders_due_while_killed_are_sent_once_after_restart(tmp_path: Path, slack: SlackStandIn) -> None:
    server = ServerProcess(
        tmp_path,
        SLACK_WEBHOOK_URL=slack.url,
        MERGE_DUPLICATES="false",
        REQUEST_TIMEOUT_SECONDS="60",
        REMIND_BEFORE_TIMEOUT_SECONDS="58",
    )
    server.start()
    try:
        pending = httpx.post(f"{server.base}/api/help-requests", json=request_body(question="Open Sundays?")).json()
        dropped = httpx.post(f"{server.base}/api/help-requests", json=request_body(question="Any parking?")).json()
        body = {"unresolved": True, "follow_up_minutes": 0.03}
        assert httpx.post(f"{server.base}/api/help-requests/{dropped['id']}/response", json=body).status_code == 200
        server.kill()
        written = time.monotonic()
        assert slack.containing("Reminder:") == [] and slack.containing("Follow up with") == []

        time.sleep(max(0.0, 2.2 - (time.monotonic() - written)))  # both come due while nothing runs
        server.start()
        assert wait_until(lambda: slack.containing("Reminder:") and slack.containing("Follow up with"), 5)
        time.sleep(0.5)
        [reminder] = slack.containing("Reminder:")
        [follow_up] = slack.containing("Follow up with")
        assert pending["id"] in reminder and dropped["id"] in follow_up
        assert httpx.get(f"{server.base}/api/help-requests/{pending['id']}").json()["status"] == "pending"
    finally:
        server.stop()
