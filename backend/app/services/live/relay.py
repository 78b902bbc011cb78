"""Change notices between API processes that share one PostgreSQL (LISTEN/NOTIFY).

Each process NOTIFYs its own changes and LISTENs for the others', so a console connected to any
process sees every change. A notice lost while the listening connection was down is made good by a
`resync` to local subscribers once it is back. SQLite runs one process and needs none of this.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from app.services.live.feed import RESYNC, ChangeFeed, Notice

log = logging.getLogger(__name__)

CHANNEL = "hitl_changes"


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresChangeRelay:
    retry_seconds = 1.0

    def __init__(self, database_url: str, feed: ChangeFeed) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.feed = feed
        self.origin = uuid.uuid4().hex[:12]  # our own notices come back to us: skip them
        self._outgoing: asyncio.Queue[Notice] = asyncio.Queue(maxsize=10_000)
        self._connected = asyncio.Event()
        feed.forwarders.append(self._send)

    def _send(self, change: Notice) -> None:
        try:
            self._outgoing.put_nowait(change)
        except asyncio.QueueFull:  # the database is unreachable for long: peers resync when it is back
            log.warning("change relay backlog full; dropping a notice")

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        origin, _, rest = payload.partition(":")
        kind, _, ident = rest.partition(":")
        if origin != self.origin and kind:
            self.feed.deliver(Notice(kind, ident))

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def run(self) -> None:
        first = True
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._received)
                self._connected.set()
                if not first:
                    # Notices may have been lost both ways while we were away: everyone reloads.
                    self.feed.deliver(RESYNC)
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{self.origin}:{RESYNC.kind}:")
                first = False
                await self._pump(conn, lost)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("change relay lost PostgreSQL (%s); retrying in %ss", exc, self.retry_seconds)
            finally:
                self._connected.clear()
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(self.retry_seconds)

    async def _pump(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        lost_wait = asyncio.ensure_future(lost.wait())
        try:
            while True:
                get = asyncio.ensure_future(self._outgoing.get())
                done, _ = await asyncio.wait({get, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    raise asyncpg.InterfaceError("listening connection closed")
                change = get.result()
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{self.origin}:{change.kind}:{change.id}")
        finally:
            lost_wait.cancel()
