"""Texts to callers through Twilio's Programmable Messaging API (the official `twilio` library).

Customer events: the acknowledgement, the answer, "no answer yet" (and, by `OnCallSmsSink`, the
supervisors' alerts to the on-call phone). Whether a caller can be
texted is decided at send time, against the database, so a STOP that arrives while a text waits
(held for a call, or retrying) still stops it: the delivery is withheld and the timeline says why.

At least once, like every sink: a send that reached Twilio but whose outcome was never recorded (the
process killed in between) is sent again once its lease runs out. Every attempt at one event carries
the same `I-Twilio-Idempotency-Token`, the event id and this sink's name, so the provider (or a proxy
in front of it) can tell a retry from a new text.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from app.db import Database
from app.models import OutboxEvent
from app.services.outbox.sinks import CUSTOMERS, SUPERVISORS, DeliveryFailed, Withheld
from app.services.sms import texts
from app.services.sms.reach import Unreachable, number_to_text

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

# The library's message API takes no extra headers; each send runs in its own task, so a context
# variable hands the transport the token of exactly the send it is making.
_idempotency_token: ContextVar[str | None] = ContextVar("twilio_idempotency_token", default=None)


class _Transport(AsyncTwilioHttpClient):
    """The library's aiohttp client, sent to `base_url` instead of Twilio's hosts (a stand-in in
    tests, a proxy in some set-ups), with the idempotency token of the send under way. Credentials
    go as a header: aiohttp 3.14 deprecates the `auth` argument the library passes them in."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base = urlsplit(base_url.rstrip("/"))

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        target = urlsplit(url)
        url = urlunsplit((self.base.scheme, self.base.netloc, self.base.path + target.path, target.query, ""))
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        if (token := _idempotency_token.get()) is not None:
            headers[IDEMPOTENCY_HEADER] = token
        return await super().request(method, url, params, data, headers, None, timeout, allow_redirects)


class SmsSink:
    name = "sms"
    recipients = CUSTOMERS

    def __init__(
        self,
        *,
        db: Database,
        account_sid: str,
        auth_token: str,
        sender: str | None,
        messaging_service_sid: str | None,
        api_base_url: str,
        region: str,
        salon_name: str,
        salon_phone: str | None,
        timeout: float,
    ) -> None:
        self.db = db
        self.sender = sender
        self.messaging_service_sid = messaging_service_sid
        self.region = region
        self.salon_name = salon_name
        self.salon_phone = salon_phone
        self.deadline = timeout
        self.transport = _Transport(api_base_url)
        self.client = Client(account_sid, auth_token, http_client=self.transport)

    async def send(self, event: OutboxEvent) -> None:
        body: dict[str, Any] = json.loads(event.body)
        request = body["request"]
        try:
            async with self.db.read() as session:
                number = await number_to_text(session=session, contact=request["customer_contact"], region=self.region)
        except Unreachable as why:
            raise Withheld(str(why)) from why
        text = texts.compose(
            event.type,
            request,
            salon_name=self.salon_name,
            salon_phone=self.salon_phone,
            expected_minutes=body.get("expected_minutes"),
        )
        await self.text(to=number, body=text, idempotency_token=f"{event.id}:{self.name}")

    async def text(self, *, to: str, body: str, idempotency_token: str) -> None:
        """One text through Twilio; a refusal or an outage is a failed delivery (retried)."""
        token = _idempotency_token.set(idempotency_token)
        try:
            await self.client.messages.create_async(
                to=to,
                body=body,
                from_=self.sender or values.unset,
                messaging_service_sid=self.messaging_service_sid or values.unset,
            )
        except TwilioRestException as exc:
            raise DeliveryFailed(f"Twilio HTTP {exc.status}, error {exc.code}: {exc.msg}") from exc
        except (TwilioException, aiohttp.ClientError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            _idempotency_token.reset(token)

    async def aclose(self) -> None:
        await self.transport.close()


class OnCallSmsSink:
    """Supervisor alerts (a new request, reminders) by text to the on-call supervisor's phone,
    through the callers' Twilio set-up. The alert's own words, cut to two segments: the request id
    at their end is what the console needs, so a cut keeps the start and says it was cut."""

    name = "sms-on-call"
    recipients = SUPERVISORS

    def __init__(self, texts_through: SmsSink, number: str) -> None:
        self.twilio = texts_through
        self.number = number
        self.deadline = texts_through.deadline

    async def send(self, event: OutboxEvent) -> None:
        body = texts.plain(event.message)
        while not texts.fits(body):
            body = body[: max(1, len(body) - 20)].rstrip() + "..."
        await self.twilio.text(to=self.number, body=body, idempotency_token=f"{event.id}:{self.name}")

    async def aclose(self) -> None:
        """The Twilio client is the callers' sink's, closed with it."""
