"""Durable supervisor reminders: before a pending request times out, and to follow up with a caller
a supervisor could not answer.

Each reminder is a row with its due time, written in the transaction of the change that sets it, so
a restart loses none. One loop per process sleeps until the earliest due time (as the expiry sweeper
does) and turns each due reminder into an outbox event in the transaction that claims it: sent
exactly once, however many processes share the database, and delivered at least once by the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.db import Database
from app.enums import ReminderKind, ReminderStatus, RequestStatus
from app.models import HelpRequest, Reminder, utcnow
from app.services import timeline
from app.services.changes import Change, Changes, Subject
from app.services.loops import WakeableLoop, seconds_until
from app.services.outbox.events import EventType, Outbox

log = logging.getLogger(__name__)


def due_event(kind: str, request: HelpRequest, now: datetime) -> EventType | None:
    """What a due reminder tells supervisors; None once it is moot (answered, or past its deadline:
    the caller is being told there is no answer yet)."""
    if kind == ReminderKind.FOLLOW_UP:
        return EventType.FOLLOW_UP_REMINDER
    if request.status == RequestStatus.PENDING and request.expires_at > now:
        return EventType.REMINDER
    return None


class Reminders:
    def __init__(
        self,
        *,
        db: Database,
        outbox: Outbox,
        changes: Changes,
        timeout: timedelta,
        before_timeout: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.changes = changes
        self.clock = clock
        # A lead as long as the timeout would remind at once: the new-request alert already does.
        self.before_timeout = before_timeout if timedelta(0) < before_timeout < timeout else None
        self.timeout = timeout

    def due_for_new_request(self, now: datetime) -> datetime | None:
        return None if self.before_timeout is None else now + self.timeout - self.before_timeout

    def schedule_before_timeout(self, session: AsyncSession, request: HelpRequest, *, now: datetime) -> None:
        """In the transaction that opens `request`."""
        if self.before_timeout is None:
            return
        session.add(
            Reminder(
                request_id=request.id,
                kind=ReminderKind.BEFORE_TIMEOUT,
                due_at=request.expires_at - self.before_timeout,
                created_at=now,
            )
        )

    def schedule_follow_up(
        self, session: AsyncSession, request: HelpRequest, *, due: datetime, now: datetime, actor: str
    ) -> None:
        """In the transaction that marks `request` unresolved."""
        session.add(Reminder(request_id=request.id, kind=ReminderKind.FOLLOW_UP, due_at=due, created_at=now))
        timeline.add(
            request,
            at=now,
            kind="reminder_set",
            actor=actor,
            message=f"Supervisors will be reminded to follow up at {due.isoformat(timespec='seconds')}",
        )

    async def next_due(self) -> datetime | None:
        async with self.db.read() as session:
            return await repository.next_reminder_at(session=session)

    async def send_due(self) -> int:
        """Send every due reminder that is not moot, one transaction each; returns how many were sent."""
        sent = 0
        while (outcome := await self._send_next()) is not None:
            sent += outcome
        return sent

    async def _send_next(self) -> bool | None:
        """Claim the earliest due reminder and write its event (or drop it); None: none is due."""
        now = self.clock()
        async with self.db.transaction() as session:
            reminder = await repository.claim_due_reminder(session=session, now=now)
            if reminder is None:
                return None
            # Locked so an answer cannot commit between this check and the reminder it allows.
            request = await repository.get_request(session=session, rid=reminder.request_id, lock=True)
            event = None if request is None else due_event(reminder.kind, request, now)
            if request is not None and event is not None:
                self.outbox.record(session=session, kind=event, request=request, now=now)
            reminder.status = ReminderStatus.SKIPPED if event is None else ReminderStatus.SENT
            reminder.done_at = now
            rid = reminder.request_id
        if event is None:
            return False
        self.changes.emit(Change(Subject.HELP_REQUEST, rid, event=event, texts_due=True))
        return True


class ReminderLoop(WakeableLoop):
    def __init__(self, reminders: Reminders) -> None:
        super().__init__()
        self.reminders = reminders
        self.due: datetime | None = None  # the due time it sleeps towards; None: no reminder waiting

    def changed(self, change: Change) -> None:
        """Wake only when the change may have set a reminder earlier than the one slept towards (each
        wake costs a query): a follow-up may be due at any time; a new request's reminder comes no
        earlier than those of the requests before it."""
        if change.event == EventType.UNRESOLVED:
            self.wake()
        elif change.event == EventType.CREATED:
            due = self.reminders.due_for_new_request(self.reminders.clock())
            if due is not None and (self.due is None or due < self.due):
                self.wake()

    async def step(self) -> float | None:
        due = await self.reminders.next_due()
        if due is not None and due <= self.reminders.clock():
            sent = await self.reminders.send_due()
            if sent:
                log.info("sent %d supervisor reminder(s)", sent)
            due = await self.reminders.next_due()
        self.due = due
        return seconds_until(due, self.reminders.clock())
