"""``/me`` and ``/users``: the partner that owns the key, and its portal users."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from debitura_provider.sandbox.domain import views
from debitura_provider.sandbox.domain.queries import CaseQuery
from debitura_provider.sandbox.edge.deps import Caller, authenticate, case_query

router = APIRouter(tags=["Partner"], dependencies=[Depends(authenticate)])

Paging = Annotated[CaseQuery, Depends(case_query(default_page_size=50))]
"""``Page``/``PageSize`` parsed like the case lists, with the documented default of 50 users."""


@router.get("/me")
async def get_me(caller: Caller) -> dict[str, Any]:
    return views.me(caller)


@router.get("/users")
async def list_users(caller: Caller, paging: Paging) -> dict[str, Any]:
    return views.users(caller, paging)
