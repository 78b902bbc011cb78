"""A text that reached Twilio just before the server was killed (its outcome never recorded) is sent
again after the restart under the same idempotency token, so the provider keeps one text."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from app.services.outbox.delivery import LEASE_MARGIN_SECONDS
from tests.server_process import ServerProcess
from tests.support import request_body
from tests.test_durability import wait_until
from tests.twilio_stand_in import ACCOUNT_SID, AUTH_TOKEN, SALON_NUMBER, Post, TwilioStandIn

pytestmark = pytest.mark.slow

ANSWER = "Yes! Balayage is $220."


def test_a_text_sent_just_before_a_hard_kill_is_sent_again_with_the_same_idempotency_token(tmp_path: Path) -> None:
    reached, release = threading.Event(), threading.Event()

    def hold(post: Post) -> float:
        if ANSWER in post.body and not reached.is_set():
            reached.set()
            release.wait(20)  # Twilio has the text; the server dies before it hears back
        return 0.0

    twilio = TwilioStandIn(hold=hold)
    # The killed process's claim is a lease of the send's deadline (1 s here) + the margin: the text
    # is tried again once it has run out.
    server = ServerProcess(
        tmp_path,
        NOTIFY_TIMEOUT_SECONDS="1",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM=SALON_NUMBER,
        TWILIO_API_BASE_URL=twilio.url,
    )
    server.start()
    try:
        rid = httpx.post(f"{server.base}/api/help-requests", json=request_body()).json()["id"]
        assert wait_until(lambda: len(twilio.sent()) == 1, 5), "the acknowledgement"
        httpx.post(f"{server.base}/api/help-requests/{rid}/response", json={"answer": ANSWER})
        assert reached.wait(5)
        server.kill()
        release.set()

        server.start()
        assert wait_until(lambda: len([p for p in twilio.posts if ANSWER in p.body]) == 2, 1 + LEASE_MARGIN_SECONDS + 5)
        first, again = [p for p in twilio.posts if ANSWER in p.body]
        assert first.to == again.to == "+14155550101"
        assert first.token is not None and first.token == again.token
        assert len([p for p in twilio.sent() if ANSWER in p.body]) == 1, "the provider keeps one text"

        rows = httpx.get(f"{server.base}/api/notifications").json()
        [row] = [r for r in rows if r["sink"] == "sms" and r["type"] == "help_request.resolved"]
        assert first.token == f"{row['event_id']}:sms"

        def recorded() -> bool:
            history = httpx.get(f"{server.base}/api/help-requests/{rid}").json()["history"]
            return "Follow-up with the answer sent to the customer via sms" in [h["message"] for h in history]

        assert wait_until(recorded, 5)
    finally:
        release.set()
        server.stop()
        twilio.close()
