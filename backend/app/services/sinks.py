"""Where notification events go. A new channel is a new class with `name` and `send`."""
from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Protocol

import httpx

from app.models import OutboxEvent

log = logging.getLogger("app.notify")


class DeliveryFailed(Exception):
    pass


class Sink(Protocol):
    name: str

    async def send(self, event: OutboxEvent) -> None:
        """Deliver or raise; any exception counts as a failed attempt to be retried."""


class ConsoleSink:
    name = "console"

    async def send(self, event: OutboxEvent) -> None:
        log.info("[%s -> %s] %s", event.type, event.recipient, event.message)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, secret: str | None, *, timeout: float, client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.secret = secret
        self.client = client or httpx.AsyncClient(timeout=timeout)

    async def send(self, event: OutboxEvent) -> None:
        body = event.body.encode()
        headers = {"Content-Type": "application/json", "X-Event-Id": event.id}
        if self.secret:
            headers["X-Signature"] = sign(self.secret, body)
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryFailed(f"HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self.client.aclose()
