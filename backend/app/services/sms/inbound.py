"""Texts callers send to the salon's number (Twilio's incoming-message webhook, once its signature
has been checked by the API).

What becomes of a text, in this order:

1. STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT (the whole text, any case): the number is opted
   out; nothing is texted to it until it texts START, START, YES or UNSTOP. Stored, so it outlasts
   restarts; checked before every send.
2. START, YES or UNSTOP from an opted-out number: texts to it resume. (From any other number, "yes"
   is an ordinary reply.)
3. The caller has a recent request, that is, a pending one, or one answered or closed in the last
   day (REPLY_WINDOW): the text joins that request's transcript and timeline, where supervisors see
   it. A pending request takes every text, since it is most likely about the question under way
   ("how much is it?" means nothing alone); after an answer only a text that asks nothing does
   ("thanks!"), and a new question starts a request of its own.
4. Anything else that asks something is a new question: the knowledge base answers it by text at once
   when it can (a request is still written, answered by "knowledge base", so the record shows it);
   otherwise it opens a help request for the supervisors and the caller gets the acknowledgement.
5. Courtesy from a number with no recent request ("hi") is kept in the inbound log, with no request.

Each text is handled once, by its Twilio message SID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.callers import UNKNOWN_CALLER
from app.db import Database
from app.enums import Channel, RequestStatus
from app.models import HelpRequest, SmsInbound, utcnow
from app.phones import e164, national_digits
from app.questions import needs_the_kb
from app.services import timeline
from app.services.changes import Change, Changes, Subject
from app.services.kb.service import KnowledgeBase
from app.services.outbox.events import EventType, Outbox
from app.services.requests.lifecycle import HelpRequestService, NewHelpRequest
from app.services.sms import ANSWERED_BY_KB
from app.services.views import KnowledgeBaseEntryView

log = logging.getLogger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
REPLY_WINDOW = timedelta(days=1)
MAX_QUESTION = 2000  # as the API allows for a question


class Outcome(StrEnum):
    DUPLICATE = "duplicate"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    ADDED = "added"  # to the caller's recent request
    ANSWERED = "answered"  # from the knowledge base
    ESCALATED = "escalated"
    KEPT = "kept"  # in the inbound log only
    IGNORED = "ignored"  # not from a phone number


@dataclass(frozen=True)
class Handled:
    outcome: Outcome
    request_id: str | None = None


class _Retired(Exception):
    """The KB entry was retired between the search and the answer."""


@dataclass(frozen=True)
class _Recent:
    id: str
    customer_name: str
    pending: bool


def keyword(body: str) -> str | None:
    """The opt-out or opt-in word a text consists of, if it is one (carriers match the whole text)."""
    word = body.strip().strip(".!").upper()
    return word if word in STOP_WORDS | START_WORDS else None


class SmsInbox:
    def __init__(
        self,
        *,
        db: Database,
        kb: KnowledgeBase,
        help_requests: HelpRequestService,
        outbox: Outbox,
        changes: Changes,
        region: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.kb = kb
        self.help_requests = help_requests
        self.outbox = outbox
        self.changes = changes
        self.region = region
        self.clock = clock

    async def receive(self, *, message_sid: str, sender: str, body: str) -> Handled:
        number = e164(sender, self.region)
        if number is None:  # a short code or an alphanumeric sender: nobody to answer
            log.warning("text %s from %r, which is not a phone number, ignored", message_sid, sender)
            return Handled(Outcome.IGNORED)
        body = body.strip()
        async with self.db.read() as session:
            if await repository.sms_inbound_seen(session=session, message_sid=message_sid):
                return Handled(Outcome.DUPLICATE)
            opted_out = await repository.sms_opted_out(session=session, number=number)
            recent = await self._recent_request(session, number)
        word = keyword(body)
        try:
            if word in STOP_WORDS:
                return await self._opt(message_sid, number, body, word, recent, opt_out=True)
            if word in START_WORDS and opted_out:
                return await self._opt(message_sid, number, body, word, recent, opt_out=False)
            # A question the API would refuse (no letter or digit: "???", an emoji) is not one.
            asks = needs_the_kb(body) and any(ch.isalnum() for ch in body)
            if recent is not None and (recent.pending or not asks):
                return await self._add_to(recent.id, message_sid, number, body)
            if not asks:
                return await self._log_only(message_sid, number, body, Outcome.KEPT)
            return await self._new_question(message_sid, number, body, recent)
        except IntegrityError:  # the same message, handled meanwhile by another worker
            return Handled(Outcome.DUPLICATE)

    async def _recent_request(self, session: AsyncSession, number: str) -> _Recent | None:
        """The caller's newest pending request, else their newest one from the last REPLY_WINDOW."""
        rows = await repository.requests_by_contact_digits(
            session=session, digits=national_digits(number), since=self.clock() - REPLY_WINDOW
        )
        mine = [row for row in rows if e164(row.customer_contact, self.region) == number]
        pending = [row for row in mine if row.status == RequestStatus.PENDING]
        if not mine:
            return None
        newest = (pending or mine)[0]
        return _Recent(newest.id, newest.customer_name, bool(pending))

    def _log(
        self, session: AsyncSession, message_sid: str, number: str, body: str, outcome: Outcome, rid: str | None
    ) -> Handled:
        session.add(
            SmsInbound(
                message_sid=message_sid,
                number=number,
                body=body,
                received_at=self.clock(),
                outcome=outcome,
                request_id=rid,
            )
        )
        return Handled(outcome, rid)

    async def _log_only(self, message_sid: str, number: str, body: str, outcome: Outcome) -> Handled:
        async with self.db.transaction() as session:
            return self._log(session, message_sid, number, body, outcome, None)

    async def _opt(
        self, message_sid: str, number: str, body: str, word: str, recent: _Recent | None, *, opt_out: bool
    ) -> Handled:
        now = self.clock()
        async with self.db.transaction() as session:
            if opt_out:
                await repository.opt_out_of_sms(session=session, number=number, keyword=word, now=now)
                said = f"Caller texted {word}: no more texts to {number} until they text START"
            else:
                await repository.opt_in_to_sms(session=session, number=number)
                said = f"Caller texted {word}: texts to {number} are back on"
            req = None if recent is None else await repository.get_request(session=session, rid=recent.id)
            if req is not None:
                timeline.add(req, at=now, kind="sms_opt", actor="caller", message=said)
            handled = self._log(
                session,
                message_sid,
                number,
                body,
                Outcome.OPTED_OUT if opt_out else Outcome.OPTED_IN,
                None if recent is None else recent.id,
            )
        if req is not None:
            self.changes.emit(Change(Subject.HELP_REQUEST, req.id))
        return handled

    async def _add_to(self, rid: str, message_sid: str, number: str, body: str) -> Handled:
        now = self.clock()
        async with self.db.transaction() as session:
            req = await repository.get_request(session=session, rid=rid, lock=True)
            if req is None:  # gone since the lookup: the text stays in the log
                return self._log(session, message_sid, number, body, Outcome.KEPT, None)
            req.transcript = [*(req.transcript or []), {"role": "caller", "text": body}]
            req.updated_at = now
            timeline.add(req, at=now, kind="caller_texted", actor="caller", message=f"Caller texted: {body}")
            handled = self._log(session, message_sid, number, body, Outcome.ADDED, rid)
        self.changes.emit(Change(Subject.HELP_REQUEST, rid))
        return handled

    async def _new_question(self, message_sid: str, number: str, body: str, recent: _Recent | None) -> Handled:
        name = recent.customer_name if recent is not None else UNKNOWN_CALLER
        question = body[:MAX_QUESTION]
        match = (await self.kb.search(question)).match
        if match is not None and (answered := await self._answer_from_kb(match, message_sid, number, name, question)):
            return answered
        created = await self.help_requests.create(
            NewHelpRequest(
                customer_name=name,
                question=question,
                channel=Channel.SMS,
                customer_contact=number,
                transcript=[{"role": "caller", "text": body}],
            ),
            # In the request's own transaction: were the text logged after it, a failure in between
            # would have Twilio's redelivery add the question to the request again as a reply.
            along=lambda session, rid: self._log(session, message_sid, number, body, Outcome.ESCALATED, rid),
        )
        return Handled(Outcome.ESCALATED, created.id)

    async def _answer_from_kb(
        self, entry: KnowledgeBaseEntryView, message_sid: str, number: str, name: str, question: str
    ) -> Handled | None:
        """A request born answered, its answer texted through the outbox; None if the entry was
        retired since the search (the question then goes to the supervisors)."""
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                handled = await self._write_answered(session, entry, message_sid, number, name, question, now)
        except _Retired:
            return None
        await self.kb.after_write()
        assert handled.request_id is not None
        self.changes.emit(Change(Subject.HELP_REQUEST, handled.request_id, event=EventType.RESOLVED, texts_due=True))
        return handled

    async def _write_answered(
        self,
        session: AsyncSession,
        entry: KnowledgeBaseEntryView,
        message_sid: str,
        number: str,
        name: str,
        question: str,
        now: datetime,
    ) -> Handled:
        revision = await repository.bump_kb_revision(session=session)
        if not await repository.record_entry_use(session=session, entry_id=entry.id, now=now, revision=revision):
            raise _Retired
        req = HelpRequest(
            customer_name=name,
            channel=Channel.SMS,
            question=question,
            status=RequestStatus.RESOLVED,
            created_at=now,
            escalated_at=now,
            updated_at=now,
            expires_at=now,
            resolved_at=now,
            answer=entry.answer,
            answered_by=ANSWERED_BY_KB,
            customer_contact=number,
            transcript=[{"role": "caller", "text": question}],
            events=[],
            attachments=[],
        )
        session.add(req)
        await session.flush()
        timeline.add(
            req, at=now, kind="asked", actor=name, message=f"{name} asked by sms, contact {number}: {question}"
        )
        timeline.add(
            req,
            at=now,
            kind="answered",
            actor=ANSWERED_BY_KB,
            message=f"Answered from the knowledge base (entry {entry.id}): {entry.answer}",
        )
        self.outbox.record(session=session, kind=EventType.RESOLVED, request=req, now=now)
        return self._log(session, message_sid, number, question, Outcome.ANSWERED, req.id)
