"""The states and kinds the API, the domain and the tables share (no persistence imports here)."""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    PENDING = "pending"
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"


class Channel(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    WEB = "web"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    # A customer's follow-up that the agent said to them in the call instead of texting it.
    SAID_IN_CALL = "said_in_call"
    # A sink refused it for good: a text to a number that said STOP, or to a contact that is no number.
    WITHHELD = "withheld"


class ReminderKind(StrEnum):
    # A pending request is about to time out.
    BEFORE_TIMEOUT = "before_timeout"
    # A supervisor who could not answer asked to be reminded to follow up with the caller.
    FOLLOW_UP = "follow_up"


class ReminderStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    # Due, but moot: the request was answered or timed out first.
    SKIPPED = "skipped"
