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
