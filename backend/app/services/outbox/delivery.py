"""The outbox deliverer: every event to every sink, at least once, with backoff, across restarts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from app import repository
from app.db import Database
from app.enums import DeliveryStatus
from app.models import OutboxDelivery, OutboxEvent, utcnow
from app.services import timeline
from app.services.batching import MicroBatcher
from app.services.changes import Change, Changes, Subject
from app.services.loops import WakeableLoop, seconds_until
from app.services.outbox.events import DELIVERED_PHRASE, EventType
from app.services.outbox.sinks import Sink, Withheld

log = logging.getLogger(__name__)

DELIVERIES = Counter("hitl_notification_attempts_total", "Notification delivery attempts", ["sink", "outcome"])

IN_FLIGHT = 20  # sends under way at once, per sink


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 300.0
    dead_after: timedelta = timedelta(days=1)

    def next_attempt(self, attempts: int, *, now: datetime, first_written: datetime) -> datetime | None:
        """When to try again after `attempts` failures; None once the event is past saving."""
        if now - first_written >= self.dead_after:
            return None
        delay = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return now + timedelta(seconds=delay)


LEASE_MARGIN_SECONDS = 15


@dataclass(frozen=True)
class _Outcome:
    delivery_id: int
    attempts: int
    error: str | Withheld | None  # None: delivered


class SinkWorker(WakeableLoop):
    """Delivers one sink's share of the outbox, so a slow or failing sink holds up no other.

    Each send runs on its own, cut off at the sink's `deadline`, and its outcome is recorded the
    moment it ends (in one transaction with those of other sends ending then): a receiver that
    drips its reply holds up that one event, for that long, and no other. A claim's lease outlasts
    the deadline, so no other process sends it meanwhile."""

    max_sleep = 5.0

    def __init__(
        self, db: Database, sink: Sink, policy: RetryPolicy, changes: Changes, clock: Callable[[], datetime]
    ) -> None:
        super().__init__()
        self.db = db
        self.sink = sink
        self.policy = policy
        self.clock = clock
        # The send is cut off at its deadline and recorded at once: a margin for the recording and for
        # clocks between processes is enough. Longer only delays the retry after a crash mid-send.
        self.lease = timedelta(seconds=sink.deadline + LEASE_MARGIN_SECONDS)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.changes = changes
        # Sends that end together are recorded in one transaction: under load, one each kept
        # SQLite's single write lock busy ~40% of the time.
        self._outcomes: MicroBatcher[_Outcome, None] = MicroBatcher(self._record_outcomes)

    async def step(self) -> float | None:
        if await self.deliver_due():
            return 0
        if len(self.in_flight) >= IN_FLIGHT:
            return None  # a send ending wakes the loop
        async with self.db.read() as session:
            due = await repository.next_delivery_at(session=session, sink=self.sink.name, now=self.clock())
        return seconds_until(due, self.clock())

    async def deliver_due(self) -> int:
        """Claim due deliveries (as many as there is room in flight for) and start sending each."""
        room = IN_FLIGHT - len(self.in_flight)
        if room <= 0:
            return 0
        now = self.clock()
        async with self.db.transaction() as session:
            claimed = await repository.claim_deliveries(
                session=session, sink=self.sink.name, now=now, lease_until=now + self.lease, limit=room
            )
            # Detached copies: the sends happen outside any transaction.
            work = [(d.id, d.attempts, d.event) for d in claimed]
        for delivery_id, attempts, event in work:
            task = asyncio.create_task(self._deliver(delivery_id, attempts, event), name=f"send {event.id}")
            self.in_flight.add(task)
            task.add_done_callback(self._ended)
        return len(work)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.wake()

    async def drain(self) -> None:
        """Wait for the sends under way (at shutdown; an unfinished one comes round again by its lease)."""
        await asyncio.gather(*self.in_flight, return_exceptions=True)

    async def _deliver(self, delivery_id: int, attempts: int, event: OutboxEvent) -> None:
        error = await self._send(event)
        try:
            await self._outcomes.run([_Outcome(delivery_id, attempts, error)])
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("could not record the outcome of %s delivery %s", self.sink.name, delivery_id)
            return
        if event.request_id:  # the outcome is in the request's timeline
            self.changes.emit(Change(Subject.HELP_REQUEST, event.request_id))

    async def _record_outcomes(self, outcomes: list[_Outcome]) -> list[None]:
        async with self.db.transaction() as session:
            for outcome in outcomes:
                delivery = await repository.get_delivery(session=session, delivery_id=outcome.delivery_id)
                if delivery is not None:
                    await self._record(session, delivery, outcome.attempts, outcome.error)
        return [None] * len(outcomes)

    async def _send(self, event: OutboxEvent) -> str | Withheld | None:
        try:
            async with asyncio.timeout(self.sink.deadline):
                await self.sink.send(event)
        except TimeoutError:
            return f"no complete answer within {self.sink.deadline:g} s"
        except Withheld as withheld:
            return withheld
        except Exception as exc:  # any failure is retried; the reason is kept for supervisors
            return f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__
        return None

    async def _record(
        self, session: AsyncSession, delivery: OutboxDelivery, attempts: int, error: str | Withheld | None
    ) -> None:
        now = self.clock()
        event = delivery.event
        delivery.locked_until = None
        if isinstance(error, Withheld):
            delivery.status, delivery.last_error = DeliveryStatus.WITHHELD, str(error)
            DELIVERIES.labels(self.sink.name, "withheld").inc()
            if event.request_id:
                timeline.add_by_id(
                    session, event.request_id, at=now, kind="withheld", actor=self.sink.name, message=str(error)
                )
            return
        if error is None:
            delivery.status, delivery.delivered_at, delivery.last_error = DeliveryStatus.DELIVERED, now, None
            DELIVERIES.labels(self.sink.name, "delivered").inc()
            if event.request_id:
                timeline.add_by_id(
                    session,
                    event.request_id,
                    at=now,
                    kind="notified",
                    actor=self.sink.name,
                    message=f"{DELIVERED_PHRASE[EventType(event.type)]} via {self.sink.name}",
                )
            return
        delivery.last_error = error
        retry_at = self.policy.next_attempt(attempts, now=now, first_written=event.created_at)
        if retry_at is not None:
            delivery.next_attempt_at = retry_at
            DELIVERIES.labels(self.sink.name, "failed").inc()
            log.warning(
                "%s delivery of %s failed (attempt %d, %s); retry at %s",
                self.sink.name,
                event.id,
                attempts,
                error,
                retry_at.isoformat(timespec="seconds"),
            )
            return
        delivery.status = DeliveryStatus.DEAD
        DELIVERIES.labels(self.sink.name, "dead").inc()
        log.error("%s delivery of %s is dead after %d attempts: %s", self.sink.name, event.id, attempts, error)
        if event.request_id:
            timeline.add_by_id(
                session,
                event.request_id,
                at=now,
                kind="notify_dead",
                actor=self.sink.name,
                message=f"Gave up on {event.type} via {self.sink.name} after {attempts} attempts: {error}",
            )


def build_workers(
    db: Database, sinks: Sequence[Sink], policy: RetryPolicy, changes: Changes, clock: Callable[[], datetime] = utcnow
) -> list[SinkWorker]:
    """One delivery loop per sink, each woken when texts may have become due."""
    workers = [SinkWorker(db, sink, policy, changes, clock) for sink in sinks]
    changes.subscribe(lambda change: [w.wake() for w in workers] if change.texts_due else None)
    return workers
