"""What each state change tells whom: the outbox rows written inside the change's transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.callers import UNKNOWN_CALLER
from app.models import HelpRequest, OutboxEvent, new_id
from app.services import timeline
from app.services.outbox.sinks import Sink
from app.services.views import HelpRequestView


class EventType(StrEnum):
    CREATED = "help_request.created"
    RESOLVED = "help_request.resolved"
    UNRESOLVED = "help_request.unresolved"
    # Supervisor reminders (services/requests/reminders.py).
    REMINDER = "help_request.reminder"
    FOLLOW_UP_REMINDER = "help_request.follow_up_reminder"
    # The caller is told by text that the team is on it (services/sms/acknowledgement.py).
    ACKNOWLEDGED = "help_request.acknowledged"


RECIPIENT = {
    EventType.CREATED: "supervisor",
    EventType.RESOLVED: "customer",
    EventType.UNRESOLVED: "customer",
    EventType.REMINDER: "supervisor",
    EventType.FOLLOW_UP_REMINDER: "supervisor",
    EventType.ACKNOWLEDGED: "customer",
}

# How the timeline says that a sink carried an event.
DELIVERED_PHRASE = {
    EventType.CREATED: "Supervisor notified",
    EventType.RESOLVED: "Follow-up with the answer sent to the customer",
    EventType.UNRESOLVED: "Customer told no answer was found yet",
    EventType.REMINDER: "Supervisor reminded that the request times out soon",
    EventType.FOLLOW_UP_REMINDER: "Supervisor reminded to follow up with the caller",
    EventType.ACKNOWLEDGED: "Customer told the team is checking",
}


def _hello(name: str) -> str:
    name = " ".join(name.split())
    return "Hi" if not name or name == UNKNOWN_CALLER else f"Hi {name}"


def _caller(name: str) -> str:
    return "the caller" if name == UNKNOWN_CALLER else name


def _quoted(question: str, limit: int = 200) -> str:
    text = " ".join(question.split())
    return f'"{text if len(text) <= limit else text[: limit - 1] + "…"}"'


def compose_message(kind: EventType, req: HelpRequest, salon_name: str, expected_minutes: int | None = None) -> str:
    if kind is EventType.CREATED:
        contact = f", contact {req.customer_contact}" if req.customer_contact else ""
        return (
            f"{req.customer_name} asked {_quoted(req.question)} (via {req.channel}{contact}). "
            f"Please answer before {req.expires_at:%H:%M} UTC. Request {req.id}."
        )
    if kind is EventType.RESOLVED:
        return (
            f"{_hello(req.customer_name)}, this is {salon_name} following up on your question "
            f"{_quoted(req.question)}: {req.answer}"
        )
    if kind is EventType.ACKNOWLEDGED:
        return (
            f"{_hello(req.customer_name)}, this is {salon_name}. We're checking with the team about your question "
            f"{_quoted(req.question)}; we'll text you here, usually within {expected_minutes} minutes."
        )
    if kind is EventType.REMINDER:
        return (
            f"Reminder: {_caller(req.customer_name)} is still waiting for an answer to {_quoted(req.question)}. "
            f"It times out at {req.expires_at:%H:%M} UTC. Request {req.id}."
        )
    if kind is EventType.FOLLOW_UP_REMINDER:
        contact = f" ({req.customer_contact})" if req.customer_contact else ""
        note = next((r.notes for r in reversed(req.responses) if r.notes), None)
        return (
            f"Follow up with {_caller(req.customer_name)}{contact} about {_quoted(req.question)}"
            f"{f' (note: {note})' if note else ''}. Request {req.id}."
        )
    return (
        f"{_hello(req.customer_name)}, this is {salon_name}. We're sorry: we haven't found an answer to "
        f"your question {_quoted(req.question)} yet. Please call us again and we'll do our best to help."
    )


class Outbox:
    """The one door for every event: written inside the transaction of the change that causes it,
    one delivery per configured sink that speaks to the event's recipient."""

    def __init__(self, *, sinks: Sequence[Sink], salon_name: str) -> None:
        self.sinks = tuple(sinks)
        self.salon_name = salon_name

    def record(
        self,
        *,
        session: AsyncSession,
        kind: EventType,
        request: HelpRequest,
        now: datetime,
        expected_minutes: int | None = None,
    ) -> OutboxEvent:
        """The event, and its deliveries. A caller still on the line hears the outcome from the
        agent: their text is held until the call's lease ends (services.requests.follow_up).

        `expected_minutes`: the acknowledgement's promise, also in its body for every sink."""
        message = compose_message(kind, request, self.salon_name, expected_minutes)
        event = OutboxEvent(
            id=new_id(), type=kind, recipient=RECIPIENT[kind], request_id=request.id, message=message, created_at=now
        )
        event.body = json.dumps(
            {
                "id": event.id,
                "type": kind.value,
                "created_at": now.isoformat(),
                "recipient": event.recipient,
                "message": message,
                "request": HelpRequestView.of(request).model_dump(mode="json"),
            }
            | ({"expected_minutes": expected_minutes} if expected_minutes is not None else {}),
            ensure_ascii=False,
        )
        audience = [sink.name for sink in self.sinks if event.recipient in sink.recipients]
        repository.add_outbox_event(session=session, event=event, sinks=audience)
        until = request.caller_on_line_until
        if RECIPIENT[kind] == "customer" and until is not None and until > now:
            for delivery in event.deliveries:
                delivery.next_attempt_at = until
            timeline.add(
                request,
                at=now,
                kind="held_for_call",
                actor="agent",
                message="The caller is on the line: the agent will tell them, and the text goes out only if the call ends first",
            )
        return event
