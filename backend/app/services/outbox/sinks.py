"""Where notification events go. A new channel is a new class with `name` and `send`."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Protocol

import httpx

from app.models import OutboxEvent

log = logging.getLogger("app.notify")


class DeliveryFailed(Exception):
    pass


class Withheld(Exception):
    """Raised by a sink that must never send this event (a number that texted STOP, a contact that
    is no phone number): the delivery ends without a retry, and the request's timeline shows the
    message, which says why."""


# Whom a sink speaks to. An event goes only to the sinks whose audience holds its recipient, so a
# supervisors' channel (Slack, email, an on-call SMS) never carries a caller's follow-up.
EVERYONE = frozenset({"supervisor", "customer"})
SUPERVISORS = frozenset({"supervisor"})
CUSTOMERS = frozenset({"customer"})


class Sink(Protocol):
    name: str
    deadline: float  # seconds one send may take, all told
    recipients: frozenset[str]

    async def send(self, event: OutboxEvent) -> None:
        """Deliver or raise; any exception but Withheld counts as a failed attempt to be retried."""


class ConsoleSink:
    name = "console"
    deadline = 5.0
    recipients = EVERYONE

    async def send(self, event: OutboxEvent) -> None:
        log.info("[%s -> %s] %s", event.type, event.recipient, event.message)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_with_time(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: a receiver that refuses old `t`
    cannot be fooled by a delivery captured and replayed later."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class WebhookSink:
    name = "webhook"
    recipients = EVERYONE

    def __init__(
        self, url: str, secret: str | None, *, timeout: float, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url
        self.secret = secret
        # httpx's timeout bounds each read; the deadline bounds the whole send (the deliverer's).
        self.deadline = timeout
        self.client = client or httpx.AsyncClient(timeout=timeout)

    async def send(self, event: OutboxEvent) -> None:
        body = event.body.encode()
        headers = {"Content-Type": "application/json", "X-Event-Id": event.id}
        if self.secret:
            headers["X-Signature"] = sign(self.secret, body)
            headers["X-Signature-Timestamped"] = sign_with_time(self.secret, body, int(time.time()))
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryFailed(f"HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self.client.aclose()
