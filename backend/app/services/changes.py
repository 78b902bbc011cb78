"""One signal for every committed change. The domain says what changed; who reacts (the console's
live feed, the delivery loops, the expiry sweeper) subscribes where the app is wired (main.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from app.services.outbox.events import EventType


class Subject(StrEnum):
    HELP_REQUEST = "help_request"
    KNOWLEDGE_BASE = "knowledge_base"


@dataclass(frozen=True, slots=True)
class Change:
    subject: Subject
    id: str
    # The outbox event the change wrote, if any (help requests only).
    event: EventType | None = None
    # Deliveries may have become due: an event written, or texts held for a call released.
    texts_due: bool = False


class Changes:
    """Called after the commit, never inside a transaction: a subscriber only schedules work."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Change], None]] = []

    def subscribe(self, subscriber: Callable[[Change], None]) -> None:
        self._subscribers.append(subscriber)

    def emit(self, change: Change) -> None:
        for subscriber in self._subscribers:
            subscriber(change)
