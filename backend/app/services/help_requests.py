"""The help-request lifecycle: pending -> resolved | unresolved, each step one transaction."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.db import Database
from app.models import HelpRequest, RequestStatus, SupervisorResponse, utcnow
from app.services.errors import InvalidTransition, NotFound
from app.services.knowledge_base import KnowledgeBase
from app.services.notifications import EventType, Notifier
from app.services.snapshots import HelpRequestDetail, HelpRequestView

log = logging.getLogger(__name__)

# Called after a commit with (event type, request id): wakes the deliverer and the sweeper.
ChangeListener = Callable[[EventType, str], None]


@dataclass(frozen=True)
class NewHelpRequest:
    customer_name: str
    question: str
    channel: str = "phone"
    customer_contact: str | None = None
    notes: str | None = None
    transcript: list[dict[str, str]] = field(default_factory=list)


class HelpRequestService:
    def __init__(
        self,
        *,
        db: Database,
        kb: KnowledgeBase,
        notifier: Notifier,
        timeout: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.kb = kb
        self.notifier = notifier
        self.timeout = timeout
        self.clock = clock
        self.listeners: list[ChangeListener] = []

    def _changed(self, kind: EventType, rid: str) -> None:
        for listener in self.listeners:
            listener(kind, rid)

    async def create(self, new: NewHelpRequest) -> HelpRequestView:
        now = self.clock()
        req = HelpRequest(
            customer_name=new.customer_name,
            channel=new.channel,
            question=new.question,
            status=RequestStatus.PENDING,
            created_at=now,
            escalated_at=now,
            updated_at=now,
            expires_at=now + self.timeout,
            notes=new.notes,
            customer_contact=new.customer_contact,
            transcript=list(new.transcript),
            events=[],
        )
        async with self.db.transaction() as session:
            session.add(req)
            await session.flush()
            via = f" by {new.channel}" + (f", contact {new.customer_contact}" if new.customer_contact else "")
            repository.add_timeline(
                request=req, at=now, kind="asked", actor=new.customer_name,
                message=f"{new.customer_name} asked{via}: {new.question}",
            )
            repository.add_timeline(
                request=req, at=now, kind="escalated", actor="agent",
                message=f"Escalated to a supervisor; times out at {req.expires_at.isoformat(timespec='seconds')}",
            )
            self.notifier.record(session=session, kind=EventType.CREATED, request=req, now=now)
            view = HelpRequestView.of(req)
        self._changed(EventType.CREATED, req.id)
        return view

    async def get(self, rid: str) -> HelpRequestDetail:
        async with self.db.read() as session:
            req = await repository.get_request(session=session, rid=rid)
            if req is None:
                raise NotFound("help request", rid)
            return HelpRequestDetail.of(req)

    async def list(self, *, status: RequestStatus | None, limit: int, offset: int) -> list[HelpRequestView]:
        async with self.db.read() as session:
            rows = await repository.list_requests(session=session, status=status, limit=limit, offset=offset)
            return [HelpRequestView.of(r) for r in rows]

    async def respond(
        self,
        rid: str,
        *,
        answer: str | None,
        topic: str | None = None,
        unresolved: bool = False,
        notes: str | None = None,
        responder: str = "supervisor",
    ) -> HelpRequestView:
        """A supervisor's answer (or "can't answer"): one winner per request, KB and outbox in the same commit."""
        now = self.clock()
        status = RequestStatus.UNRESOLVED if unresolved else RequestStatus.RESOLVED
        answer = answer.strip() if answer and answer.strip() else None
        async with self.db.transaction() as session:
            won = await repository.leave_pending(
                session=session, rid=rid, status=status, now=now,
                answer=None if unresolved else answer, answered_by=responder,
            )
            req = await self._load_after_transition(session, rid, won)
            session.add(
                SupervisorResponse(
                    request_id=rid, answer=answer, topic=topic, unresolved=unresolved,
                    notes=notes, responder=responder, created_at=now,
                )
            )
            if unresolved:
                why = f" ({notes})" if notes else ""
                repository.add_timeline(
                    request=req, at=now, kind="unresolved", actor=responder,
                    message=f"Marked unresolved by {responder}{why}",
                )
                kind = EventType.UNRESOLVED
            else:
                assert answer is not None  # the API refuses an empty answer unless unresolved
                entry = await self.kb.learn(
                    session=session, question=req.question, answer=answer, topic=topic,
                    source_request_id=rid, now=now,
                )
                repository.add_timeline(
                    request=req, at=now, kind="answered", actor=responder,
                    message=f"Answered by {responder}: {answer}",
                )
                repository.add_timeline(
                    request=req, at=now, kind="learned", actor="system",
                    message=f"Saved to the knowledge base (entry {entry.id})",
                )
                kind = EventType.RESOLVED
            self.notifier.record(session=session, kind=kind, request=req, now=now)
            view = HelpRequestView.of(req)
        self._changed(kind, rid)
        return view

    async def time_out(self, rid: str, *, actor: str = "supervisor") -> HelpRequestView:
        async with self.db.transaction() as session:
            view = await self._expire(session, rid, actor=actor, must_win=True)
        assert view is not None
        self._changed(EventType.UNRESOLVED, rid)
        return view

    async def expire_overdue(self) -> list[str]:
        """Move every pending request past its deadline to `unresolved`; returns the ids moved."""
        async with self.db.transaction() as session:
            expired = []
            for rid in await repository.overdue_request_ids(session=session, now=self.clock()):
                if await self._expire(session, rid, actor="timeout", must_win=False):
                    expired.append(rid)
        for rid in expired:
            self._changed(EventType.UNRESOLVED, rid)
        return expired

    async def next_deadline(self) -> datetime | None:
        async with self.db.read() as session:
            return await repository.next_deadline(session=session)

    async def _expire(self, session: AsyncSession, rid: str, *, actor: str, must_win: bool) -> HelpRequestView | None:
        now = self.clock()
        won = await repository.leave_pending(session=session, rid=rid, status=RequestStatus.UNRESOLVED, now=now)
        if not won and not must_win:
            return None
        req = await self._load_after_transition(session, rid, won)
        message = (
            "Timed out with no answer from a supervisor" if actor == "timeout" else f"Timed out by {actor}"
        )
        repository.add_timeline(request=req, at=now, kind="timed_out", actor=actor, message=message)
        self.notifier.record(session=session, kind=EventType.UNRESOLVED, request=req, now=now)
        return HelpRequestView.of(req)

    async def _load_after_transition(self, session: AsyncSession, rid: str, won: bool) -> HelpRequest:
        req = await repository.get_request(session=session, rid=rid, fresh=True)
        if req is None:
            raise NotFound("help request", rid)
        if not won:
            raise InvalidTransition(rid, req.status, HelpRequestView.of(req).model_dump(mode="json"))
        return req
