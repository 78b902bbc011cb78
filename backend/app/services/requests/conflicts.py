"""What a change to a request that already left `pending` is told: who closed it, how long ago, and
with what answer, so the supervisor who lost a race knows whose answer the caller got."""

from __future__ import annotations

from datetime import datetime

from app.models import HelpRequest
from app.services.errors import InvalidTransition
from app.services.views import HelpRequestView

# Timeline kinds that take a request out of `pending` (services/requests/lifecycle.py).
CLOSING_KINDS = ("answered", "unresolved", "timed_out")


def ago(seconds: float) -> str:
    if seconds < 1:  # a race lost by milliseconds; also another process's clock a little ahead
        return "just now"
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def closed_by(req: HelpRequest, now: datetime) -> str:
    """ "Priya answered 20 s ago: Yes, from $180." and the like."""
    closing = next((e for e in reversed(req.events) if e.kind in CLOSING_KINDS), None)
    if closing is None:
        return f"help request {req.id} is already {req.status}"
    when = ago((now - closing.at).total_seconds())
    if closing.kind == "answered":
        return f"{closing.actor} answered {when}: {req.answer}"
    if closing.kind == "unresolved":
        return f"{closing.actor} marked it unresolved {when}"
    if closing.actor == "timeout":
        return f"It timed out {when} with no answer"
    return f"{closing.actor} timed it out {when}"


def already_closed(req: HelpRequest, now: datetime) -> InvalidTransition:
    return InvalidTransition(closed_by(req, now), HelpRequestView.of(req).model_dump(mode="json"))
