"""Database outages as the client should see them: 503 with Retry-After, never a 500, and a read
that lost its connection (a server restart, a failover, a killed backend) tried once more first."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# A retry is safe only when the request changes nothing: GETs (and /health's probe, which is
# idempotent). A write that lost its connection may or may not have committed: the client decides.
SAFE_METHODS = frozenset({"GET", "HEAD"})


class DatabaseFaults:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        retry = scope["method"] in SAFE_METHODS
        while True:
            try:
                return await self.app(scope, receive, tracked)
            except DBAPIError as exc:
                # Constraint and SQL errors are bugs, not outages: they stay 500s.
                if isinstance(exc, IntegrityError | ProgrammingError) or started:
                    raise
                if retry and exc.connection_invalidated:
                    retry = False
                    log.warning(
                        "database connection lost during %s %s; trying once more", scope["method"], scope["path"]
                    )
                    continue
                # A lost connection, a failover, a deadlock, a full disk: the transaction rolled
                # back and nothing was written, so the client may simply try again.
                log.error("database error: %s", exc)
                response = JSONResponse(
                    {"detail": "database unavailable, try again"}, status_code=503, headers={"Retry-After": "1"}
                )
                return await response(scope, receive, send)
