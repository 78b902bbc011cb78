"""Operations: readiness (/health, which writes) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import repository
from app.api.deps import SupervisorOnly
from app.db import Database
from app.models import utcnow
from app.services.kb.service import KnowledgeBase

# Seconds /health waits for the database's write lock before saying it is not ready.
HEALTH_TIMEOUT = 5.0

router = APIRouter()


@router.get("/metrics", dependencies=SupervisorOnly, tags=["operations"])
async def metrics() -> Response:
    """Prometheus metrics (notification attempts by sink and outcome, among others)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/health", tags=["operations"])
async def health(request: Request) -> JSONResponse:
    """Ready: the database answers and takes a write (a full disk or a read-only database is not ready)."""
    db: Database = request.app.state.db
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            async with db.transaction() as session:
                await repository.touch_health_probe(session=session, now=utcnow())
    except Exception as exc:  # health reports any failure instead of raising it
        detail = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)[:200]
        return JSONResponse({"status": "error", "database": detail}, status_code=503, headers={"Retry-After": "5"})
    kb: KnowledgeBase = request.app.state.services.kb
    return JSONResponse({"status": "ok", "database": db.engine.dialect.name, "kb_search": kb.mode})
