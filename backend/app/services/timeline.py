"""A help request's timeline: the audit of who did what to it, written by the domain in the same
transaction as the change it records."""

from __future__ import annotations

from datetime import datetime

from app.models import HelpRequest, RequestEvent


def add(request: HelpRequest, *, at: datetime, kind: str, actor: str, message: str) -> None:
    # Through the relationship, so a view taken in the same transaction already shows it.
    request.events.append(RequestEvent(at=at, kind=kind, actor=actor, message=message))
