"""A help request's timeline: the audit of who did what to it, written by the domain in the same
transaction as the change it records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import HelpRequest, RequestEvent


def add(request: HelpRequest, *, at: datetime, kind: str, actor: str, message: str) -> None:
    # Through the relationship, so a view taken in the same transaction already shows it.
    request.events.append(RequestEvent(at=at, kind=kind, actor=actor, message=message))


def add_by_id(session: AsyncSession, request_id: str, *, at: datetime, kind: str, actor: str, message: str) -> None:
    """The same line, for a writer that has no view to show: loading the request and its whole
    timeline just to append one line was most of the cost of recording a delivery."""
    session.add(RequestEvent(request_id=request_id, at=at, kind=kind, actor=actor, message=message))
