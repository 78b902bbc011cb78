"""The seam between the request lifecycle and a live call: how the caller hears the outcome.

A caller still on the line hears the supervisor's answer from the voice agent; anyone else gets it
as a text through the outbox. The text is always written, in the lifecycle's own transaction, so an
answer can never be lost; while the caller is on the line the outbox holds its deliveries back, and
the agent takes them back (they become `said_in_call`) before it speaks. An agent that crashes or
hangs up without doing so lets the hold lapse and the text goes out. One of the two, never both,
never none: taking back is a compare-and-set that fails once any deliverer has touched the text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.db import Database
from app.enums import DeliveryStatus, RequestStatus
from app.models import HelpRequest, utcnow
from app.services import timeline
from app.services.changes import Change, Changes, Subject
from app.services.errors import Conflict, NotFound
from app.services.views import HelpRequestView

log = logging.getLogger(__name__)

# The agent renews presence every few seconds; a lease this long survives a missed renewal or two
# and bounds how late the text goes out after an agent dies mid-call.
PRESENCE_LEASE = timedelta(seconds=20)


class LiveFollowUp:
    """The agent's side of a caller still on the line: presence, and taking the held text back."""

    def __init__(self, *, db: Database, changes: Changes, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.changes = changes
        self.clock = clock

    @staticmethod
    def lease_until(now: datetime) -> datetime:
        return now + PRESENCE_LEASE

    async def set_presence(self, rid: str, *, on_line: bool) -> HelpRequestView:
        """Renew (or end) the agent's lease saying this request's caller is still in the call."""
        now = self.clock()
        released = 0
        async with self.db.transaction() as session:
            req = await self._load(session, rid, lock=True)
            was_on_line = req.caller_on_line_until is not None and req.caller_on_line_until > now
            if on_line:
                req.caller_on_line_until = self.lease_until(now)
            else:
                req.caller_on_line_until = None
                released = await repository.release_held_deliveries(session=session, rid=rid, now=now)
                if released:
                    timeline.add(
                        req,
                        at=now,
                        kind="call_ended",
                        actor="agent",
                        message="The caller hung up before the agent could tell them: the follow-up goes out as a text",
                    )
            view = HelpRequestView.of(req)
        if released or was_on_line != on_line:  # renewals change nothing anyone sees
            self._changed(rid)
        return view

    async def take_follow_up(self, rid: str) -> HelpRequestView:
        """The agent is about to tell the caller in the call: take the held text back.

        Conflict when there is nothing to say yet (still pending), the caller is no longer on the
        line, or the text has already gone. Taking twice is one take (the agent may retry)."""
        now = self.clock()
        async with self.db.transaction() as session:
            req = await self._load(session, rid, lock=True)
            if req.status == RequestStatus.PENDING:
                raise Conflict(f"help request {rid} has no answer yet")
            event = await repository.latest_customer_event(session=session, rid=rid)
            if event is None:
                raise Conflict(f"help request {rid} has no follow-up to give")
            if event.deliveries and all(d.status == DeliveryStatus.SAID_IN_CALL for d in event.deliveries):
                return HelpRequestView.of(req)
            if req.caller_on_line_until is None or req.caller_on_line_until <= now:
                # Presence ended (hang-up, or a lapsed lease): the text is the caller's only way to hear it.
                raise Conflict(
                    f"the caller of help request {rid} is no longer on the line; the follow-up goes as a text"
                )
            taken = await repository.take_back_deliveries(session=session, event_id=event.id, now=now)
            if taken != len(event.deliveries):
                # Some sink already sent (or is sending) the text: saying it too would tell the caller twice.
                raise Conflict(f"the follow-up for help request {rid} has already gone out as a text")
            said = req.answer if req.status == RequestStatus.RESOLVED else "no answer was found yet"
            timeline.add(
                req,
                at=now,
                kind="said_in_call",
                actor="agent",
                message=f"Told the caller on the line: {said}",
            )
            view = HelpRequestView.of(req)
        self._changed(rid)
        return view

    async def give_back_follow_up(self, rid: str) -> HelpRequestView:
        """The agent took the follow-up but the caller did not hear it all (hung up, talked over it):
        the text goes out after all."""
        now = self.clock()
        async with self.db.transaction() as session:
            req = await self._load(session, rid, lock=True)
            event = await repository.latest_customer_event(session=session, rid=rid)
            returned = (
                0
                if event is None
                else await repository.give_back_deliveries(session=session, event_id=event.id, now=now)
            )
            if returned:
                timeline.add(
                    req,
                    at=now,
                    kind="call_ended",
                    actor="agent",
                    message="The caller did not hear the whole answer in the call: it goes out as a text",
                )
            view = HelpRequestView.of(req)
        if returned:
            self._changed(rid)
        return view

    async def _load(self, session: AsyncSession, rid: str, lock: bool = False) -> HelpRequest:
        req = await repository.get_request(session=session, rid=rid, lock=lock)
        if req is None:
            raise NotFound("help request", rid)
        return req

    def _changed(self, rid: str) -> None:
        # Held texts may have become due (presence ended, a take given back): wake the deliverers.
        self.changes.emit(Change(Subject.HELP_REQUEST, rid, texts_due=True))
