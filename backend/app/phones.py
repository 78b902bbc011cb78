"""Phone numbers as Twilio needs them (E.164), whatever way the agent, a caller or a setting wrote them.
Shared by the settings (checking SMS_ON_CALL) and the SMS domain."""

from __future__ import annotations

import phonenumbers


def e164(contact: str | None, region: str) -> str | None:
    """`contact` as an E.164 number ("+14155550101"); None when it is not a valid phone number.

    A number written without a country code is read as one of `region`'s (ISO 3166 code)."""
    if not contact or not contact.strip():
        return None
    try:
        parsed = phonenumbers.parse(contact, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def national_digits(number: str) -> str:
    """The digits a request's contact holds for this E.164 number however it was written
    ("(415) 555-0101", "+1 415 555 0101"): what a query can look for before parsing."""
    return str(phonenumbers.parse(number).national_number)
