"""Request-scoped dependencies: the services and the bearer-token roles."""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from app.config import Settings
from app.services.change_feed import ChangeFeed
from app.services.help_requests import HelpRequestService
from app.services.kb.service import KnowledgeBase
from app.services.outbox_view import OutboxView
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
    """The agent's endpoints: open to the agent token and the supervisor token."""
    if not settings.auth_enabled:
        return
    token = _bearer(request)
    if token is None or not (_same(token, settings.supervisor_token) | _same(token, settings.agent_token)):
        raise _UNAUTHORIZED


ServicesDep = Annotated[Services, Depends(_services)]
SupervisorOnly = [Depends(require_supervisor)]
AgentAllowed = [Depends(require_agent)]
