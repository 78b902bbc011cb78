"""Help requests (shared/CONTRACT.md): create, read, the caller's details, the live call's
follow-up, the supervisor's answer and the timeout. Thin: validate, call a service, return its view."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from app.api.deps import (
    AgentAllowed,
    AgentDep,
    ServicesDep,
    SupervisorDep,
    SupervisorOnly,
    ThisCallOnly,
    may_see_the_call,
)
from app.api.schemas import (
    HelpRequestCreate,
    HelpRequestUpdate,
    PresenceIn,
    ResponseCreate,
)
from app.enums import RequestStatus
from app.services.requests.lifecycle import NewHelpRequest
from app.services.views import (
    ConflictOut,
    CreatedHelpRequest,
    HelpRequestDetail,
    HelpRequestView,
)

router = APIRouter(prefix="/api")
CONFLICT = {409: {"model": ConflictOut, "description": "The request is no longer pending"}}
NOT_FOUND = {404: {"description": "No help request with that id"}}


@router.post(
    "/help-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedHelpRequest,
    dependencies=AgentAllowed,
    tags=["help requests"],
)
async def create_help_request(body: HelpRequestCreate, svc: ServicesDep) -> CreatedHelpRequest:
    """Open a request; the reply's `call_key` is what lets the agent token change it later."""
    return await svc.help_requests.create(
        NewHelpRequest(
            customer_name=body.customer_name,
            question=body.question,
            channel=body.channel,
            customer_contact=body.customer_contact or None,
            notes=body.notes or None,
            transcript=[line.model_dump() for line in body.transcript],
            caller_on_line=body.caller_on_line,
        )
    )


@router.get("/help-requests", response_model=list[HelpRequestView], dependencies=SupervisorOnly, tags=["help requests"])
async def list_help_requests(
    svc: ServicesDep,
    status: RequestStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[HelpRequestView]:
    """Newest first."""
    return await svc.help_requests.list(status=status, limit=limit, offset=offset)


@router.get(
    "/help-requests/{rid}",
    response_model=HelpRequestDetail,
    responses=NOT_FOUND,
    dependencies=AgentAllowed,
    tags=["help requests"],
)
async def get_help_request(rid: str, request: Request, svc: ServicesDep, who: AgentDep) -> HelpRequestDetail:
    """With the agent token, the caller's data (name, number, question, transcript, timeline) only
    with the request's `X-Call-Key`; without it, where the request stands and its answer."""
    detail = await svc.help_requests.get(rid)
    return detail if await may_see_the_call(who, rid, request, svc) else detail.without_caller_data()


@router.patch(
    "/help-requests/{rid}",
    response_model=HelpRequestView,
    responses={**NOT_FOUND, **CONFLICT},
    dependencies=ThisCallOnly,
    tags=["help requests"],
)
async def update_help_request(rid: str, body: HelpRequestUpdate, svc: ServicesDep) -> HelpRequestView:
    """The agent adds what it learned later in the call: the caller's name or number, the transcript."""
    return await svc.help_requests.update_caller(
        rid,
        customer_name=body.customer_name,
        customer_contact=body.customer_contact,
        transcript=None if body.transcript is None else [line.model_dump() for line in body.transcript],
    )


@router.post(
    "/help-requests/{rid}/presence",
    response_model=HelpRequestView,
    responses=NOT_FOUND,
    dependencies=ThisCallOnly,
    tags=["live calls"],
)
async def set_caller_presence(rid: str, body: PresenceIn, svc: ServicesDep) -> HelpRequestView:
    """The agent says the caller is still in the call (a lease; renew it every few seconds) or has
    hung up. While the caller is on the line, the follow-up text is held for the agent to say."""
    return await svc.help_requests.follow_up.set_presence(rid, on_line=body.on_line)


@router.post(
    "/help-requests/{rid}/follow-up",
    response_model=HelpRequestView,
    responses={**NOT_FOUND, 409: {"description": "No answer yet, or the text has already gone out"}},
    dependencies=ThisCallOnly,
    tags=["live calls"],
)
async def take_follow_up(rid: str, svc: ServicesDep) -> HelpRequestView:
    """The agent will tell the caller on the line: the held text is cancelled (`said_in_call`).
    A 409 means the caller gets (or got) the text instead, so the agent must not say it too."""
    return await svc.help_requests.follow_up.take_follow_up(rid)


@router.delete(
    "/help-requests/{rid}/follow-up",
    response_model=HelpRequestView,
    responses=NOT_FOUND,
    dependencies=ThisCallOnly,
    tags=["live calls"],
)
async def give_back_follow_up(rid: str, svc: ServicesDep) -> HelpRequestView:
    """The agent took the follow-up but the caller did not hear it all: it goes out as a text."""
    return await svc.help_requests.follow_up.give_back_follow_up(rid)


@router.post(
    "/help-requests/{rid}/response",
    response_model=HelpRequestView,
    responses={**NOT_FOUND, **CONFLICT},
    dependencies=SupervisorOnly,
    tags=["help requests"],
)
async def respond_to_help_request(
    rid: str, body: ResponseCreate, svc: ServicesDep, who: SupervisorDep
) -> HelpRequestView:
    """Answer a pending request (learned into the KB), or mark it unresolved. Recorded under the
    signed-in supervisor's name; a 409 says who answered first, when, and what."""
    return await svc.help_requests.respond(
        rid,
        answer=body.answer,
        topic=body.topic or None,
        unresolved=body.unresolved,
        notes=body.notes or None,
        responder=who.acting_as(body.answered_by),
        entry_id=body.entry_id,
        follow_up_after=timedelta(minutes=body.follow_up_minutes) if body.follow_up_minutes else None,
    )


@router.post(
    "/help-requests/{rid}/timeout",
    response_model=HelpRequestView,
    responses={**NOT_FOUND, **CONFLICT},
    dependencies=SupervisorOnly,
    tags=["help requests"],
)
async def time_out_help_request(rid: str, svc: ServicesDep, who: SupervisorDep) -> HelpRequestView:
    return await svc.help_requests.time_out(rid, actor=who.name)
