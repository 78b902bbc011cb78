"""The knowledge base: entries, search (answer or escalate), phrasings, uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import RequestValidationError

from app.api.deps import AgentAllowed, ServicesDep, SupervisorDep, SupervisorOnly
from app.api.schemas import (
    BY,
    EntryCreate,
    EntryEdit,
    PhrasingCreate,
)
from app.services.views import (
    EntryDetail,
    KnowledgeBaseEntryView,
    SearchOut,
)

router = APIRouter(prefix="/api")


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
async def create_knowledge_base_entry(
    body: EntryCreate, svc: ServicesDep, who: SupervisorDep
) -> KnowledgeBaseEntryView:
    return await svc.kb.create(
        question=body.question, answer=body.answer, topic=body.topic or None, actor=who.acting_as(body.by)
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
async def edit_knowledge_base_entry(
    entry_id: str, body: EntryEdit, svc: ServicesDep, who: SupervisorDep
) -> KnowledgeBaseEntryView:
    return await svc.kb.edit(
        entry_id, question=body.question, answer=body.answer, topic=body.topic, actor=who.acting_as(body.by)
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
    who: SupervisorDep,
    by: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00]+$", description=BY)] = None,
) -> KnowledgeBaseEntryView:
    """Retire an entry: it stops answering callers and stays readable with its history."""
    return await svc.kb.retire(entry_id, actor=who.acting_as(by))


@router.post(
    "/knowledge-base/{entry_id}/phrasings",
    status_code=status.HTTP_201_CREATED,
    response_model=KnowledgeBaseEntryView,
    responses={404: {"description": "No such active entry"}, 409: {"description": "That is another entry's question"}},
    dependencies=SupervisorOnly,
    tags=["knowledge base"],
)
async def add_knowledge_base_phrasing(
    entry_id: str, body: PhrasingCreate, svc: ServicesDep, who: SupervisorDep
) -> KnowledgeBaseEntryView:
    """Another way callers ask this entry's question: it matches like the question itself."""
    return await svc.kb.add_phrasing(entry_id, text=body.text, actor=who.acting_as(body.by))


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
    who: SupervisorDep,
    by: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00]+$", description=BY)] = None,
) -> KnowledgeBaseEntryView:
    """Stop a phrasing from leading callers to this entry (kept in the entry's history)."""
    return await svc.kb.remove_phrasing(entry_id, phrasing_id, actor=who.acting_as(by))


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
