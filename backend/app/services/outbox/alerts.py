"""Supervisor alert channels: a Slack incoming webhook and email over SMTP.

They speak to supervisors only (`recipients = SUPERVISORS`): the outbox gives them new requests and
reminders, never a caller's follow-up, which holds the caller's number and the answer meant for
them. An on-call SMS is one more sink of the same kind: a `Sink` with `recipients = SUPERVISORS`,
added where the sinks are built (`app.main.build_sinks`); nothing else changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
import httpx

from app.models import OutboxEvent
from app.services.outbox.events import EventType
from app.services.outbox.sinks import SUPERVISORS, DeliveryFailed

SUBJECT: dict[str, str] = {
    EventType.CREATED: "A caller needs an answer",
    EventType.REMINDER: "Reminder: a request times out soon",
    EventType.FOLLOW_UP_REMINDER: "Reminder: follow up with a caller",
}


def slack_text(message: str) -> str:
    """Slack reads `<...>` as links and mentions: a caller who says "<!channel>" must not page
    everyone. Escaping these three characters is all Slack asks for."""
    return message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSink:
    name = "slack"
    recipients = SUPERVISORS

    def __init__(self, url: str, *, timeout: float, client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.deadline = timeout
        self.client = client or httpx.AsyncClient(timeout=timeout)

    async def send(self, event: OutboxEvent) -> None:
        try:
            response = await self.client.post(self.url, json={"text": slack_text(event.message)})
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            # Slack says why in the body (`invalid_payload`, `no_service`, `channel_is_archived`).
            raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        await self.client.aclose()


class EmailSink:
    name = "email"
    recipients = SUPERVISORS

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        starttls: bool,
        sender: str,
        to: Sequence[str],
        salon_name: str,
        timeout: float,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.sender = sender
        self.to = tuple(to)
        self.salon_name = salon_name
        self.deadline = timeout

    def compose(self, event: OutboxEvent) -> EmailMessage:
        question = " ".join(json.loads(event.body)["request"]["question"].split())
        excerpt = question if len(question) <= 60 else question[:59] + "…"
        label = SUBJECT.get(event.type, event.type)
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Subject"] = f"[{self.salon_name}] {label}: {excerpt}"
        msg["Date"] = format_datetime(event.created_at)
        # The same on every retry: a send that timed out after the server took it may go twice,
        # and mail clients fold messages with one Message-ID into one.
        msg["Message-ID"] = f"<{event.id}@frontdesk-hitl>"
        msg["X-Event-Id"] = event.id
        msg.set_content(event.message)
        return msg

    async def send(self, event: OutboxEvent) -> None:
        await aiosmtplib.send(
            self.compose(event),
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            # Explicit either way: required when on (no silent fall-back to sending the password in
            # clear), never attempted when off (a local relay with a self-signed certificate).
            start_tls=self.starttls,
            timeout=self.deadline,
        )
