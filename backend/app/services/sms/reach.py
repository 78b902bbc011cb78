"""Whether a caller can be texted now: a phone number that has not opted out."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.phones import e164


class Unreachable(Exception):
    """Why no text goes to this caller, in the words the request's timeline shows."""


async def number_to_text(*, session: AsyncSession, contact: str | None, region: str) -> str:
    """The caller's E.164 number; Unreachable when it is no phone number or it texted STOP."""
    number = e164(contact, region)
    if number is None:
        if not contact or not contact.strip():
            raise Unreachable("No SMS: the caller left no number")
        raise Unreachable(f"No SMS: contact {contact!r} is not a phone number")
    if await repository.sms_opted_out(session=session, number=number):
        raise Unreachable(f"No SMS: {number} texted STOP; texts resume if they text START")
    return number
