"""HTTP endpoints (shared/CONTRACT.md). Thin: validate, call a service, return its read model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import AgentAllowed, ServicesDep, SettingsDep, SupervisorOnly, ThisCallOnly, may_see_the_call
from app.api.schemas import (
    ConflictOut,
    EntryCreate,
    EntryDetail,
    EntryEdit,
    HelpRequestCreate,
    HelpRequestDetail,
    HelpRequestUpdate,
    HelpRequestView,
    KnowledgeBaseEntryView,
    PhrasingCreate,
    PresenceIn,
    ResponseCreate,
    SearchOut,
)
from app.models import DeliveryStatus, RequestStatus
from app.services.help_requests import NewHelpRequest
from app.services.outbox_view import DeliveryView
from app.services.snapshots import CreatedHelpRequest

router = APIRouter(prefix="/api")
ops_router = APIRouter()
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
async def get_help_request(rid: str, request: Request, svc: ServicesDep, settings: SettingsDep) -> HelpRequestDetail:
    """With the agent token, the caller's data (name, number, question, transcript, timeline) only
    with the request's `X-Call-Key`; without it, where the request stands and its answer."""
    detail = await svc.help_requests.get(rid)
    return detail if await may_see_the_call(request, rid, settings, svc) else detail.without_caller_data()


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
    return await svc.help_requests.calls.set_presence(rid, on_line=body.on_line)


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
    return await svc.help_requests.calls.take_follow_up(rid)


@router.delete(
    "/help-requests/{rid}/follow-up",
    response_model=HelpRequestView,
    responses=NOT_FOUND,
    dependencies=ThisCallOnly,
    tags=["live calls"],
)
async def give_back_follow_up(rid: str, svc: ServicesDep) -> HelpRequestView:
    """The agent took the follow-up but the caller did not hear it all: it goes out as a text."""
    return await svc.help_requests.calls.give_back_follow_up(rid)


@router.post(
    "/help-requests/{rid}/response",
    response_model=HelpRequestView,
    responses={**NOT_FOUND, **CONFLICT},
    dependencies=SupervisorOnly,
    tags=["help requests"],
)
async def respond_to_help_request(rid: str, body: ResponseCreate, svc: ServicesDep) -> HelpRequestView:
    """Answer a pending request (learned into the KB), or mark it unresolved."""
    return await svc.help_requests.respond(
        rid,
        answer=body.answer,
        topic=body.topic or None,
        unresolved=body.unresolved,
        notes=body.notes or None,
        responder=body.answered_by or "supervisor",
        entry_id=body.entry_id,
    )


@router.post(
    "/help-requests/{rid}/timeout",
    response_model=HelpRequestView,
    responses={**NOT_FOUND, **CONFLICT},
    dependencies=SupervisorOnly,
    tags=["help requests"],
)
async def time_out_help_request(rid: str, svc: ServicesDep) -> HelpRequestView:
    return await svc.help_requests.time_out(rid)


@router.get(
    "/knowledge-base", response_model=list[KnowledgeBaseEntryView], dependencies=AgentAllowed, tags=["knowledge base"]
)
async def list_knowledge_base(svc: ServicesDep, include_retired: bool = False) -> list[KnowledgeBaseEntryView]:
    """Most recently updated first; retired entries only when asked for."""
    return await svc.kb.list(include_retired=include_retired)


@router.post(
    "/knowledge-base",
    status_code=status.HTTP_201_CREATED,
    response_model=KnowledgeBaseEntryView,
    responses={409: {"description": "An entry with this question exists"}},
    dependencies=SupervisorOnly,
    tags=["knowledge base"],
)
async def create_knowledge_base_entry(body: EntryCreate, svc: ServicesDep) -> KnowledgeBaseEntryView:
    return await svc.kb.create(
        question=body.question, answer=body.answer, topic=body.topic or None, actor=body.by or "supervisor"
    )


@router.get("/knowledge-base/search", response_model=SearchOut, dependencies=AgentAllowed, tags=["knowledge base"])
async def search_knowledge_base(svc: ServicesDep, q: Annotated[str, Query(min_length=1, max_length=2000)]) -> SearchOut:
    """`match` is set only when the answer is safe to say to a caller who asked `q`."""
    if not q.strip() or "\x00" in q:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "q"),
                    "msg": "q must be a question, not blank or NUL",
                    "input": q,
                }
            ]
        )
    return SearchOut.of(await svc.kb.search(q.strip()))


@router.get(
    "/knowledge-base/{entry_id}",
    response_model=EntryDetail,
    responses={404: {"description": "No such entry"}},
    dependencies=AgentAllowed,
    tags=["knowledge base"],
)
async def get_knowledge_base_entry(entry_id: str, svc: ServicesDep) -> EntryDetail:
    """One entry (retired ones too) with its audit trail."""
    entry, history = await svc.kb.get(entry_id)
    return EntryDetail(**entry.model_dump(), history=history)


@router.patch(
    "/knowledge-base/{entry_id}",
    response_model=KnowledgeBaseEntryView,
    responses={404: {"description": "No such active entry"}, 409: {"description": "Another entry has that question"}},
    dependencies=SupervisorOnly,
    tags=["knowledge base"],
)
async def edit_knowledge_base_entry(entry_id: str, body: EntryEdit, svc: ServicesDep) -> KnowledgeBaseEntryView:
    return await svc.kb.edit(
        entry_id, question=body.question, answer=body.answer, topic=body.topic, actor=body.by or "supervisor"
    )


@router.delete(
    "/knowledge-base/{entry_id}",
    response_model=KnowledgeBaseEntryView,
    responses={404: {"description": "No such active entry"}},
    dependencies=SupervisorOnly,
    tags=["knowledge base"],
)
async def retire_knowledge_base_entry(
    entry_id: str,
    svc: ServicesDep,
    by: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[^\x00]+$")] = "supervisor",
) -> KnowledgeBaseEntryView:
    """Retire an entry: it stops answering callers and stays readable with its history."""
    return await svc.kb.retire(entry_id, actor=by)


@router.post(
    "/knowledge-base/{entry_id}/phrasings",
    status_code=status.HTTP_201_CREATED,
    response_model=KnowledgeBaseEntryView,
    responses={404: {"description": "No such active entry"}, 409: {"description": "That is another entry's question"}},
    dependencies=SupervisorOnly,
    tags=["knowledge base"],
)
async def add_knowledge_base_phrasing(entry_id: str, body: PhrasingCreate, svc: ServicesDep) -> KnowledgeBaseEntryView:
    """Another way callers ask this entry's question: it matches like the question itself."""
    return await svc.kb.add_phrasing(entry_id, text=body.text, actor=body.by or "supervisor")


@router.delete(
    "/knowledge-base/{entry_id}/phrasings/{phrasing_id}",
    response_model=KnowledgeBaseEntryView,
    responses={404: {"description": "No such active entry or phrasing"}},
    dependencies=SupervisorOnly,
    tags=["knowledge base"],
)
async def remove_knowledge_base_phrasing(
    entry_id: str,
    phrasing_id: str,
    svc: ServicesDep,
    by: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[^\x00]+$")] = "supervisor",
) -> KnowledgeBaseEntryView:
    """Stop a phrasing from leading callers to this entry (kept in the entry's history)."""
    return await svc.kb.remove_phrasing(entry_id, phrasing_id, actor=by)


@router.post(
    "/knowledge-base/{entry_id}/uses",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "No such active entry"}},
    dependencies=AgentAllowed,
    tags=["knowledge base"],
)
async def record_knowledge_base_use(entry_id: str, svc: ServicesDep) -> Response:
    """The agent said this entry's answer to a caller: counted in `times_used`."""
    await svc.kb.record_use(entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications", response_model=list[DeliveryView], dependencies=SupervisorOnly, tags=["notifications"])
async def list_notifications(
    svc: ServicesDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryView]:
    """Notification deliveries, newest first; `status=dead` lists the ones that were given up on."""
    return await svc.outbox.deliveries(status=status, limit=limit)


@ops_router.get("/metrics", dependencies=SupervisorOnly, tags=["operations"])
async def metrics() -> Response:
    """Prometheus metrics (notification attempts by sink and outcome, among others)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
