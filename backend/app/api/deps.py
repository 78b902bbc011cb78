"""Request-scoped dependencies: the services and the bearer-token roles."""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from app.config import Settings
from app.services.kb.service import KnowledgeBase
from app.services.live.feed import ChangeFeed
from app.services.outbox.deliveries import OutboxView
from app.services.requests.lifecycle import HelpRequestService
from app.services.stats import Overview


@dataclass(frozen=True)
class Services:
    help_requests: HelpRequestService
    kb: KnowledgeBase
    outbox: OutboxView
    overview: Overview
    feed: ChangeFeed


def _services(request: Request) -> Services:
    return request.app.state.services


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


_UNAUTHORIZED = HTTPException(
    status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
)


def require_supervisor(request: Request, settings: Annotated[Settings, Depends(_settings)]) -> None:
    if not settings.auth_enabled:
        return
    token = _bearer(request)
    if token is None:
        raise _UNAUTHORIZED
    if _same(token, settings.supervisor_token):
        return
    if _same(token, settings.agent_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the agent token cannot do this; a supervisor token is needed")
    raise _UNAUTHORIZED


def require_agent(request: Request, settings: Annotated[Settings, Depends(_settings)]) -> None:
    """The agent's endpoints: open to the agent token (within its rate) and the supervisor token."""
    if not settings.auth_enabled:
        return
    token = _bearer(request)
    if token is not None and _same(token, settings.supervisor_token):
        return
    if token is None or not _same(token, settings.agent_token):
        raise _UNAUTHORIZED
    wait = request.app.state.agent_rate.take()
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"the agent token is over {settings.agent_rate_per_second:g} requests a second",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def holds_only_the_agent_token(request: Request, settings: Settings) -> bool:
    token = _bearer(request)
    return settings.auth_enabled and token is not None and not _same(token, settings.supervisor_token)


async def may_see_the_call(request: Request, rid: str, settings: Settings, services: Services) -> bool:
    """The supervisor (or anyone, with auth off) sees every call; the agent token only the call whose
    key it sends in `X-Call-Key` (given when that call's request was created)."""
    if not holds_only_the_agent_token(request, settings):
        return True
    return await services.help_requests.holds_call_key(rid, request.headers.get("X-Call-Key"))


async def require_call_key(
    rid: str,
    request: Request,
    settings: Annotated[Settings, Depends(_settings)],
    services: Annotated[Services, Depends(_services)],
) -> None:
    if not await may_see_the_call(request, rid, settings, services):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this request belongs to another call: send its X-Call-Key (returned when the request was created)",
        )


ServicesDep = Annotated[Services, Depends(_services)]
SupervisorOnly = [Depends(require_supervisor)]
AgentAllowed = [Depends(require_agent)]
# The agent token, for the call whose request this is (see may_see_the_call).
ThisCallOnly = [Depends(require_agent), Depends(require_call_key)]
SettingsDep = Annotated[Settings, Depends(_settings)]
