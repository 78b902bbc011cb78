"""Supervisor alerts on Slack and email: supervisor events only, through the outbox, retried."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from app.services.outbox.alerts import slack_text
from tests.stand_ins import SlackStandIn, SmtpStandIn
from tests.support import eventually, make_settings, request_body, running_app

# The SMTP stand-in takes a password without TLS on purpose (loopback only); aiosmtpd warns of it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
def smtp() -> Iterator[SmtpStandIn]:
    stand_in = SmtpStandIn(username="alerts", password="hunter2")
    yield stand_in
    stand_in.close()


def alert_settings(database_url: str, slack: SlackStandIn, smtp: SmtpStandIn, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_webhook_url": slack.url,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_username": "alerts",
        "smtp_password": "hunter2",
        "smtp_starttls": False,
        "alert_email_from": "Frontdesk <frontdesk@salon.test>",
        "alert_email_to": "owner@salon.test, manager@salon.test",
    }
    values.update(overrides)
    return make_settings(database_url, **values)


async def deliveries(client: httpx.AsyncClient, rid: str) -> list[dict[str, Any]]:
    rows = (await client.get("/api/notifications", params={"limit": 500})).json()
    return [r for r in rows if r["request_id"] == rid]


async def test_a_new_request_reaches_slack_and_email_and_the_callers_follow_up_goes_to_neither(
    sqlite_url: str, slack: SlackStandIn, smtp: SmtpStandIn
) -> None:
    async with running_app(alert_settings(sqlite_url, slack, smtp)) as client:
        question = "<!channel> can I bring my dog & my cat?"
        req = (await client.post("/api/help-requests", json=request_body(question=question))).json()
        await eventually(lambda: slack.texts and smtp.messages, timeout=5)
        await client.post(f"/api/help-requests/{req['id']}/response", json={"answer": "Only guide dogs, sorry."})

        async def all_delivered() -> list[dict[str, Any]]:
            rows = await deliveries(client, req["id"])
            return rows if len(rows) == 4 and all(r["status"] == "delivered" for r in rows) else []

        rows = await eventually(all_delivered, timeout=5)
        assert sorted((r["type"], r["sink"]) for r in rows) == [
            ("help_request.created", "console"),
            ("help_request.created", "email"),
            ("help_request.created", "slack"),
            ("help_request.resolved", "console"),
        ]

        [text] = slack.texts
        assert "&lt;!channel&gt; can I bring my dog &amp; my cat?" in text and "<!channel>" not in text
        assert req["id"] in text

        [mail] = smtp.messages
        assert smtp.envelopes == [("frontdesk@salon.test", ["owner@salon.test", "manager@salon.test"])]
        assert (
            mail["Subject"] == "[Maple & Shear Salon] A caller needs an answer: <!channel> can I bring my dog & my cat?"
        )
        [event_id] = [r["event_id"] for r in rows if r["sink"] == "email"]
        assert mail["Message-ID"] == f"<{event_id}@frontdesk-hitl>" and mail["X-Event-Id"] == event_id
        assert "Only guide dogs" not in mail.get_content() and question in mail.get_content()

        history = [h["message"] for h in (await client.get(f"/api/help-requests/{req['id']}")).json()["history"]]
        assert "Supervisor notified via slack" in history and "Supervisor notified via email" in history
        assert not any("Only guide dogs" in t for t in slack.texts)


async def test_a_slack_outage_is_retried_and_holds_up_no_other_channel(
    sqlite_url: str, slack: SlackStandIn, smtp: SmtpStandIn
) -> None:
    slack.down = True
    async with running_app(alert_settings(sqlite_url, slack, smtp)) as client:
        req = (await client.post("/api/help-requests", json=request_body())).json()
        await eventually(lambda: smtp.messages and slack.refused >= 2, timeout=5)
        [row] = [r for r in await deliveries(client, req["id"]) if r["sink"] == "slack"]
        assert row["status"] == "pending" and row["last_error"] == "DeliveryFailed: HTTP 503: service_unavailable"

        slack.down = False

        async def slack_delivered() -> list[dict[str, Any]]:
            # The stand-in has the text a moment before the app has recorded the send.
            return [
                r for r in await deliveries(client, req["id"]) if r["sink"] == "slack" and r["status"] == "delivered"
            ]

        await eventually(slack_delivered, timeout=5)
        assert len(slack.texts) == 1 and len(smtp.messages) == 1


async def test_required_starttls_is_never_skipped(sqlite_url: str, slack: SlackStandIn, smtp: SmtpStandIn) -> None:
    """The stand-in offers no STARTTLS: the password must not go in clear, so nothing is sent."""
    async with running_app(alert_settings(sqlite_url, slack, smtp, smtp_starttls=True)) as client:
        req = (await client.post("/api/help-requests", json=request_body())).json()

        async def email_failed() -> list[dict[str, Any]]:
            return [r for r in await deliveries(client, req["id"]) if r["sink"] == "email" and r["last_error"]]

        [row] = await eventually(email_failed, timeout=5)
        assert row["status"] == "pending" and "STARTTLS" in row["last_error"]
        assert smtp.messages == []


@pytest.mark.parametrize(
    "partial",
    [
        {"smtp_host": "smtp.salon.test"},
        {"smtp_host": "smtp.salon.test", "alert_email_from": "a@salon.test", "alert_email_to": " , "},
        {"alert_email_to": "owner@salon.test"},
        {
            "smtp_host": "smtp.salon.test",
            "alert_email_from": "a@salon.test",
            "alert_email_to": "owner@salon.test",
            "smtp_username": "alerts",
        },
    ],
)
def test_half_an_email_set_up_is_refused_at_start(partial: dict[str, str], sqlite_url: str) -> None:
    with pytest.raises(ValidationError):
        make_settings(sqlite_url, **partial)


def test_slack_text_escapes_only_what_slack_reads_as_markup() -> None:
    assert slack_text("Tom & Jerry <@U123> <https://x.test|click> 50% off *today*") == (
        "Tom &amp; Jerry &lt;@U123&gt; &lt;https://x.test|click&gt; 50% off *today*"
    )
