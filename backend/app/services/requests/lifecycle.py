"""The help-request lifecycle: pending -> resolved | unresolved, each step one transaction."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.db import Database
from app.enums import RequestStatus
from app.models import HelpRequest, SupervisorResponse, utcnow
from app.services import timeline
from app.services.batching import MicroBatcher
from app.services.changes import Change, Changes, Subject
from app.services.errors import NotFound
from app.services.kb import decision
from app.services.kb.search import candidates
from app.services.kb.service import KnowledgeBase, Learned
from app.services.outbox.events import EventType, Outbox
from app.services.requests.conflicts import already_closed
from app.services.requests.follow_up import LiveFollowUp
from app.services.requests.pending_questions import PendingQuestions
from app.services.requests.reminders import Reminders
from app.services.sms.acknowledgement import Acknowledgements
from app.services.views import CreatedHelpRequest, HelpRequestDetail, HelpRequestView

log = logging.getLogger(__name__)


def hash_call_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewHelpRequest:
    customer_name: str
    question: str
    channel: str = "phone"
    customer_contact: str | None = None
    notes: str | None = None
    transcript: list[dict[str, str]] = field(default_factory=list)
    caller_on_line: bool = False


@dataclass(frozen=True)
class _Opening:
    new: NewHelpRequest
    vector: np.ndarray | None
    call_key: str
    along: Callable[[AsyncSession, str], object] | None = None


class HelpRequestService:
    def __init__(
        self,
        *,
        db: Database,
        kb: KnowledgeBase,
        outbox: Outbox,
        follow_up: LiveFollowUp,
        reminders: Reminders,
        changes: Changes,
        timeout: timedelta,
        merge_duplicates: bool = True,
        acknowledgements: Acknowledgements | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`acknowledgements`: with SMS set up, the caller is texted that the team is on it."""
        self.merge_duplicates = merge_duplicates
        self.acknowledgements = acknowledgements
        self.db = db
        self.kb = kb
        self.outbox = outbox
        self.follow_up = follow_up
        self.reminders = reminders
        self.changes = changes
        self.timeout = timeout
        self.clock = clock
        self.pending = PendingQuestions(db, kb.lexicon)
        # Concurrent callers' requests open in one transaction: SQLite's one write lock is then held
        # once for many of them, not once each.
        self._openings: MicroBatcher[_Opening, HelpRequestView] = MicroBatcher(self._open_each)

    def _changed(self, kind: EventType | None, rid: str) -> None:
        """After the commit. `kind`: the event the change wrote (None: it notifies nobody)."""
        if kind in (EventType.RESOLVED, EventType.UNRESOLVED):
            self.pending.discard(rid)
        self.changes.emit(Change(Subject.HELP_REQUEST, rid, event=kind, texts_due=kind is not None))

    async def create(
        self, new: NewHelpRequest, *, along: Callable[[AsyncSession, str], object] | None = None
    ) -> CreatedHelpRequest:
        """`along(session, request_id)`: more rows to write in the transaction that opens the
        request, so that they and the request exist together or not at all."""
        # The agent searched the KB with these words a moment ago: the embedding is cached.
        vectors = await self.kb.embed_query(new.question)
        call_key = secrets.token_urlsafe(24)
        opening = _Opening(new, None if vectors is None else vectors[0], call_key, along)
        [view] = await self._openings.run([opening])
        self._changed(EventType.CREATED, view.id)
        return CreatedHelpRequest(**view.model_dump(), call_key=call_key)

    async def _open_each(self, openings: list[_Opening]) -> list[HelpRequestView | Exception]:
        """Opens concurrent callers' requests in one transaction; should it fail, each on its own,
        so that one caller's bad request never costs another theirs."""
        try:
            return list(await self._open(openings))
        except (OperationalError, InterfaceError):
            raise  # the database's trouble, not one request's: one by one would only wait longer
        except Exception:
            if len(openings) == 1:
                raise
        results: list[HelpRequestView | Exception] = []
        for opening in openings:
            try:
                results.extend(await self._open([opening]))
            except Exception as exc:
                results.append(exc)
        return results

    async def _open(self, openings: list[_Opening]) -> list[HelpRequestView]:
        indexed: list[str] = []

        def index(req: HelpRequest) -> None:
            # At once, so a later caller in this batch can join it.
            self.pending.add(req.id, req.question, req.question_embedding)
            indexed.append(req.id)

        try:
            async with self.db.transaction() as session:
                opened = [self._new_request(o) for o in openings]
                session.add_all(opened)
                # Inserted before the rows that refer to them (an outbox row has no relationship
                # the flush could order by).
                await session.flush()
                proposals: list[str | None] = []
                for opening, req in zip(openings, opened, strict=True):
                    proposed = await self._same_question_pending(opening.new.question, opening.vector)
                    if proposed is None:
                        index(req)
                    proposals.append(proposed)
                heads = {req.id: req for req in opened} | await repository.lock_requests(
                    session=session, ids={p for p in proposals if p is not None}
                )
                for opening, req, proposed in zip(openings, opened, proposals, strict=True):
                    head = None if proposed is None else heads.get(proposed)
                    if head is not None and (head.status != RequestStatus.PENDING or head.attached_to is not None):
                        head = None
                    if proposed is not None and head is None:
                        self.pending.discard(proposed)  # answered meanwhile, maybe by another process
                        index(req)
                    await self._record_opening(session, req, head)
                    if opening.along is not None:
                        opening.along(session, req.id)
                views = [HelpRequestView.of(req) for req in opened]
        except BaseException:
            for rid in indexed:
                self.pending.discard(rid)
            raise
        return views

    def _new_request(self, opening: _Opening) -> HelpRequest:
        new, now = opening.new, self.clock()
        return HelpRequest(
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
            caller_on_line_until=self.follow_up.lease_until(now) if new.caller_on_line else None,
            question_embedding=None if opening.vector is None else opening.vector.tobytes(),
            call_key_hash=hash_call_key(opening.call_key),
            events=[],
            attachments=[],
        )

    async def _record_opening(self, session: AsyncSession, req: HelpRequest, head: HelpRequest | None) -> None:
        now = req.created_at
        req.attached_to = head.id if head else None
        via = f" by {req.channel}" + (f", contact {req.customer_contact}" if req.customer_contact else "")
        timeline.add(
            req,
            at=now,
            kind="asked",
            actor=req.customer_name,
            message=f"{req.customer_name} asked{via}: {req.question}",
        )
        if head is None:
            escalation = f"Escalated to a supervisor; times out at {req.expires_at.isoformat(timespec='seconds')}"
        else:
            escalation = (
                f"Attached to request {head.id} ({head.customer_name} asked the same: {head.question}); "
                "one answer will reach both callers"
            )
            timeline.add(
                head,
                at=now,
                kind="attached",
                actor="agent",
                message=f"{req.customer_name} asked the same question (request {req.id})",
            )
        timeline.add(req, at=now, kind="escalated", actor="agent", message=escalation)
        self.outbox.record(session=session, kind=EventType.CREATED, request=req, now=now)
        self.reminders.schedule_before_timeout(session, req, now=now)
        if self.acknowledgements is not None:
            await self.acknowledgements.acknowledge(session=session, request=req, now=now)

    async def holds_call_key(self, rid: str, key: str | None) -> bool:
        """Whether `key` is the call key of request `rid` (NotFound if there is no such request)."""
        async with self.db.read() as session:
            stored = await repository.call_key_hash(session=session, rid=rid)
        if stored is None:
            raise NotFound("help request", rid)
        return key is not None and hmac.compare_digest(stored, hash_call_key(key))

    async def _same_question_pending(self, question: str, vector: np.ndarray | None) -> str | None:
        """The pending request, heading its group, that asks the same question, if one does."""
        if not self.merge_duplicates:
            return None
        await self.pending.refresh()
        cands = candidates(question, vector, index=self.pending.index, lexicon=self.kb.lexicon)
        same = decision.decide_same_question(question, cands, self.kb.lexicon, self.kb.is_common_word)
        return None if same.match is None else same.match.entry_id

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

    async def update_caller(
        self,
        rid: str,
        *,
        customer_name: str | None = None,
        customer_contact: str | None = None,
        transcript: list[dict[str, str]] | None = None,
    ) -> HelpRequestView:
        """What the agent learns later in the call: the caller's name or number while the request is
        pending (after that the follow-up has been written to whoever was known), and the transcript
        while it is pending or the caller is still on the line (after that the record is closed)."""
        now = self.clock()
        async with self.db.transaction() as session:
            req = await repository.get_request(session=session, rid=rid)
            if req is None:
                raise NotFound("help request", rid)
            still_on_line = req.caller_on_line_until is not None and req.caller_on_line_until > now
            if req.status != RequestStatus.PENDING and (customer_name or customer_contact or not still_on_line):
                raise already_closed(req, now)
            if customer_name and customer_name != req.customer_name:
                timeline.add(
                    req,
                    at=now,
                    kind="caller",
                    actor="agent",
                    message=f"Caller gave their name: {customer_name}",
                )
                req.customer_name = customer_name
            if customer_contact and customer_contact != req.customer_contact:
                timeline.add(
                    req,
                    at=now,
                    kind="caller",
                    actor="agent",
                    message=f"Caller gave a contact: {customer_contact}",
                )
                req.customer_contact = customer_contact
            if transcript is not None:
                req.transcript = list(transcript)
            req.updated_at = now
            view = HelpRequestView.of(req)
        self._changed(None, rid)
        return view

    async def respond(
        self,
        rid: str,
        *,
        answer: str | None,
        topic: str | None = None,
        unresolved: bool = False,
        notes: str | None = None,
        responder: str = "supervisor",
        entry_id: str | None = None,
        follow_up_after: timedelta | None = None,
    ) -> HelpRequestView:
        """A supervisor's answer (or "can't answer") to a request and every pending request attached
        with it: one winner per request; KB entry and outbox events in the same commit.

        `entry_id`: answer with that KB entry (its answer is the answer; the caller's question
        becomes one of its phrasings). `follow_up_after`, with `unresolved`: remind supervisors this
        long from now to follow up with each caller."""
        if entry_id is not None:
            answer = (await self.kb.get(entry_id))[0].answer
        answer = answer.strip() if answer and answer.strip() else None
        question = (await self.get(rid)).question
        if entry_id is None and answer is not None and not unresolved:
            entry_id = await self.kb.entry_with_same_answer(question, answer)
        # Embedding is CPU work: done before the transaction so the write lock is held briefly.
        vectors = None if unresolved or answer is None else await self.kb.entry_vectors(question, answer)
        now = self.clock()
        status = RequestStatus.UNRESOLVED if unresolved else RequestStatus.RESOLVED
        kind = EventType.UNRESOLVED if unresolved else EventType.RESOLVED
        async with self.db.transaction() as session:
            await repository.lock_group(session=session, rid=rid)
            won = await repository.leave_pending(
                session=session,
                rid=rid,
                status=status,
                now=now,
                answer=None if unresolved else answer,
                answered_by=responder,
            )
            req = await self._load_after_transition(session, rid, won)
            learned = None
            if not unresolved:
                assert answer is not None  # the API refuses an empty answer unless unresolved
                learned = await self.kb.learn(
                    session=session,
                    question=req.question,
                    answer=answer,
                    topic=topic,
                    source_request_id=rid,
                    vectors=vectors,
                    now=now,
                    actor=responder,
                    entry_id=entry_id,
                )
            answered = [req]
            for other_id in await repository.pending_group_ids(session=session, root=req.attached_to or rid):
                if await repository.leave_pending(
                    session=session,
                    rid=other_id,
                    status=status,
                    now=now,
                    answer=None if unresolved else answer,
                    answered_by=responder,
                ):
                    answered.append(await self._load_after_transition(session, other_id, True))
            for member in answered:
                # Each request of the group shows the answer it got, the one that was typed or not.
                session.add(
                    SupervisorResponse(
                        request_id=member.id,
                        answer=answer,
                        topic=topic,
                        unresolved=unresolved,
                        notes=notes,
                        responder=responder,
                        created_at=now,
                    )
                )
                self._record_response(
                    session,
                    member,
                    now=now,
                    responder=responder,
                    answer=answer,
                    notes=notes,
                    learned=learned,
                    via=None if member is req else rid,
                )
                self.outbox.record(session=session, kind=kind, request=member, now=now)
                if unresolved and follow_up_after is not None:
                    self.reminders.schedule_follow_up(
                        session, member, due=now + follow_up_after, now=now, actor=responder
                    )
            view = HelpRequestView.of(req)
        if learned is not None:
            await self.kb.after_write()
        for member in answered:
            self._changed(kind, member.id)
        return view

    @staticmethod
    def _record_response(
        session: AsyncSession,
        req: HelpRequest,
        *,
        now: datetime,
        responder: str,
        answer: str | None,
        notes: str | None,
        learned: Learned | None,
        via: str | None,
    ) -> None:
        also = f" (with request {via}, the same question)" if via else ""
        if answer is None or learned is None:
            why = f" ({notes})" if notes else ""
            timeline.add(
                req,
                at=now,
                kind="unresolved",
                actor=responder,
                message=f"Marked unresolved by {responder}{also}{why}",
            )
            return
        timeline.add(req, at=now, kind="answered", actor=responder, message=f"Answered by {responder}{also}: {answer}")
        if via is None:
            learned_how = (
                f"The caller's wording was added to knowledge base entry {learned.entry.id}"
                if learned.action == "phrasing added"
                else f"Saved to the knowledge base (entry {learned.entry.id})"
            )
            timeline.add(req, at=now, kind="learned", actor="system", message=learned_how)

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
        message = "Timed out with no answer from a supervisor" if actor == "timeout" else f"Timed out by {actor}"
        timeline.add(req, at=now, kind="timed_out", actor=actor, message=message)
        self.outbox.record(session=session, kind=EventType.UNRESOLVED, request=req, now=now)
        return HelpRequestView.of(req)

    async def _load_after_transition(self, session: AsyncSession, rid: str, won: bool) -> HelpRequest:
        req = await repository.get_request(session=session, rid=rid, fresh=True)
        if req is None:
            raise NotFound("help request", rid)
        if not won:
            raise already_closed(req, self.clock())
        return req
