"""The read endpoints ``/managed-cases`` and ``/cases`` share, each over its own scope of cases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from debitura_provider.sandbox.domain import views
from debitura_provider.sandbox.domain.problems import not_found
from debitura_provider.sandbox.domain.queries import CaseScope
from debitura_provider.sandbox.edge.deps import Caller, CaseId, SandboxDep


def add_case_reads(router: APIRouter, scope: CaseScope) -> None:
    """Register by-reference, get, timeline, chats, payments and files on ``router``.

    Call it after the router's own fixed paths: ``/{id}`` would otherwise catch them.
    """

    @router.get("/case-reference/{caseReference}")
    async def get_by_reference(
        sb: SandboxDep, caller: Caller, reference: Annotated[str, Path(alias="caseReference")]
    ) -> dict[str, Any]:
        case = sb.store.case_by_reference(reference)
        if case is not None and scope.visible(case, caller):
            return views.case(sb, case)
        raise not_found(f"Case reference {reference} not found or not {scope.who}.")

    @router.get("/{id}")
    async def get(sb: SandboxDep, caller: Caller, case_id: CaseId) -> dict[str, Any]:
        return views.case(sb, scope.find(sb, caller, case_id))

    @router.get("/{id}/timeline")
    async def get_timeline(sb: SandboxDep, caller: Caller, case_id: CaseId) -> dict[str, Any]:
        return views.timeline(scope.find(sb, caller, case_id))

    @router.get("/{id}/chats")
    async def get_chats(sb: SandboxDep, caller: Caller, case_id: CaseId) -> list[dict[str, Any]]:
        return views.chats(scope.find(sb, caller, case_id))

    @router.get("/{id}/payments")
    async def get_payments(sb: SandboxDep, caller: Caller, case_id: CaseId) -> list[dict[str, Any]]:
        return views.payments(scope.find(sb, caller, case_id))

    @router.get("/{id}/files")
    async def get_files(sb: SandboxDep, caller: Caller, case_id: CaseId) -> list[dict[str, Any]]:
        case = scope.find(sb, caller, case_id)
        return [views.file(sb, case, f) for f in case.files]
