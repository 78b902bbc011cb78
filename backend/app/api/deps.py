"""Request-scoped dependencies: the services, and who sent the request (bearer tokens and roles)."""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict

from app.config import Settings
from app.services.kb.service import KnowledgeBase
from app.services.live.feed import ChangeFeed
from app.services.outbox.deliveries import OutboxView
from app.services.requests.lifecycle import HelpRequestService
from app.services.stats import Overview
from app.services.supervisors import SupervisorAccounts


@dataclass(frozen=True)
class Services:
    help_requests: HelpRequestService
    kb: KnowledgeBase
    outbox: OutboxView
    overview: Overview
    feed: ChangeFeed
    supervisors: SupervisorAccounts


def _services(request: Request) -> Services:
    return request.app.state.services


def _settings(request: Request) -> Settings:
    return request.app.state.settings


ServicesDep = Annotated[Services, Depends(_services)]
SettingsDep = Annotated[Settings, Depends(_settings)]


class Role(StrEnum):
    ADMIN = "admin"  # SUPERVISOR_TOKEN, or anyone on this machine while auth is off
    SUPERVISOR = "supervisor"  # a named account (python -m app supervisors add)
    AGENT = "agent"  # AGENT_TOKEN


class Actor(BaseModel):
    """Who sent a request."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role

    def acting_as(self, claimed: str | None) -> str:
        """The name a change is recorded under. A named supervisor is always themselves; the shared
        admin token may say on whose behalf it acts (`answered_by`, `by`)."""
        return claimed if claimed and self.role is Role.ADMIN else self.name


async def auth_is_on(app: FastAPI) -> bool:
    """Auth is on when SUPERVISOR_TOKEN is set or a supervisor account was ever made. While it is off,
    every caller counts as this machine's operator, and only this machine is served (api/loopback.py)."""
    settings: Settings = app.state.settings
    return settings.supervisor_token is not None or await app.state.services.supervisors.exist()


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def current_actor(request: Request, settings: SettingsDep, services: ServicesDep) -> Actor | None:
    """None: no token, or one nobody holds (a revoked account's among them)."""
    if not await auth_is_on(request.app):
        return Actor(name=settings.supervisor_name, role=Role.ADMIN)
    token = _bearer(request)
    if token is None:
        return None
    if _same(token, settings.supervisor_token):
        return Actor(name=settings.supervisor_name, role=Role.ADMIN)
    if _same(token, settings.agent_token):
        return Actor(name="agent", role=Role.AGENT)
    account = await services.supervisors.identify(token)
    return None if account is None else Actor(name=account.name, role=Role.SUPERVISOR)


_UNAUTHORIZED = HTTPException(
    status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
)


async def require_supervisor(actor: Annotated[Actor | None, Depends(current_actor)]) -> Actor:
    if actor is None:
        raise _UNAUTHORIZED
    if actor.role is Role.AGENT:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the agent token cannot do this; a supervisor's token is needed")
    return actor


async def require_agent(request: Request, actor: Annotated[Actor | None, Depends(current_actor)]) -> Actor:
    """The agent's endpoints: open to the agent token (within its rate) and to every supervisor."""
    if actor is None:
        raise _UNAUTHORIZED
    if actor.role is Role.AGENT and (wait := request.app.state.agent_rate.take()) is not None:
        settings: Settings = request.app.state.settings
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"the agent token is over {settings.agent_rate_per_second:g} requests a second",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return actor


SupervisorDep = Annotated[Actor, Depends(require_supervisor)]
AgentDep = Annotated[Actor, Depends(require_agent)]


async def still_signed_in(request: Request, actor: Actor) -> bool:
    """For a response that lasts (the event stream): whether the token that opened it still works.
    Only a named account's can stop working while the server runs (revoked)."""
    if actor.role is not Role.SUPERVISOR:
        return True
    token = _bearer(request)
    return token is not None and await _services(request).supervisors.identify(token) is not None


async def may_see_the_call(actor: Actor, rid: str, request: Request, services: Services) -> bool:
    """Supervisors (and anyone, with auth off) see every call; the agent token only the call whose
    key it sends in `X-Call-Key` (given when that call's request was created)."""
    if actor.role is not Role.AGENT:
        return True
    return await services.help_requests.holds_call_key(rid, request.headers.get("X-Call-Key"))


async def require_call_key(rid: str, request: Request, actor: AgentDep, services: ServicesDep) -> None:
    if not await may_see_the_call(actor, rid, request, services):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this request belongs to another call: send its X-Call-Key (returned when the request was created)",
        )


SupervisorOnly = [Depends(require_supervisor)]
AgentAllowed = [Depends(require_agent)]
# The agent token, for the call whose request this is (see may_see_the_call).
ThisCallOnly = [Depends(require_agent), Depends(require_call_key)]
