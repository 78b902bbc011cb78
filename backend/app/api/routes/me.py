"""Who the console is signed in as."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.api.deps import Role, SupervisorDep, auth_is_on

router = APIRouter(prefix="/api")


class Me(BaseModel):
    name: str = Field(description="The name this token's changes are recorded under.")
    role: Role = Field(description="`admin` (SUPERVISOR_TOKEN, or anyone while auth is off) or `supervisor`.")
    auth: bool = Field(description="False while auth is off: then only this machine is served, with no token.")


@router.get("/me", response_model=Me, tags=["supervisors"])
async def who_am_i(request: Request, who: SupervisorDep) -> Me:
    return Me(name=who.name, role=who.role, auth=await auth_is_on(request.app))
