"""Texts from callers: Twilio's incoming-message webhook. No bearer token: Twilio cannot send one, so
the request's `X-Twilio-Signature` (an HMAC with the account's auth token over the URL and the form)
is the authentication."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from app.api.deps import SettingsDep
from app.services.sms.inbound import SmsInbox

router = APIRouter(prefix="/api/sms")

# Empty TwiML: Twilio itself texts nothing back; any reply goes through the outbox.
NOTHING_TO_SAY = str(MessagingResponse())


def _inbox(request: Request) -> SmsInbox | None:
    return request.app.state.sms_inbox


def signed_url(request: Request, public_base_url: str | None) -> str:
    """The URL Twilio requested, which its signature covers: behind a proxy, the public one."""
    if public_base_url is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public_base_url.rstrip('/')}{request.url.path}{query}"


@router.post(
    "/inbound",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}, "description": "Empty TwiML"},
        403: {"description": "SMS is not set up, or the request is not signed by Twilio"},
    },
    tags=["sms"],
)
async def receive_text(
    request: Request, settings: SettingsDep, inbox: Annotated[SmsInbox | None, Depends(_inbox)]
) -> Response:
    """A text a caller sent to the salon's number (a form post from Twilio, signed)."""
    token = settings.twilio_auth_token
    if inbox is None or token is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "SMS is not set up here (TWILIO_* settings)")
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(token.get_secret_value())
    if not signature or not validator.validate(signed_url(request, settings.public_base_url), form, signature):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or invalid X-Twilio-Signature")
    message_sid, sender = form.get("MessageSid") or form.get("SmsSid"), form.get("From")
    if not message_sid or not sender:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a text needs MessageSid and From")
    # PostgreSQL stores no NUL in text: a text carrying one would fail at every redelivery.
    body = form.get("Body", "").replace("\x00", "")
    await inbox.receive(message_sid=message_sid, sender=sender, body=body)
    return Response(NOTHING_TO_SAY, media_type="application/xml")
