"""``/managed-cases``: what a managing partner submits and monitors (read-only, except test payments)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from debitura_provider.api.models import (
    CreateManagedCaseRequest,
    TestPaymentRequest,
    UpdatePaymentRequest,
)
from debitura_provider.sandbox.domain import intake, money, payments, views
from debitura_provider.sandbox.domain.problems import bad_request
from debitura_provider.sandbox.domain.queries import MANAGED, managed_case
from debitura_provider.sandbox.domain.runtime import Sandbox, partner_actor
from debitura_provider.sandbox.domain.state import CaseRecord, Partner
from debitura_provider.sandbox.edge.deps import (
    Caller,
    CaseId,
    CaseQueryDep,
    PaymentId,
    ReopenFlag,
    SandboxDep,
    SimulatorDep,
    authenticate,
    json_body,
)
from debitura_provider.sandbox.edge.routers.case_reads import add_case_reads

router = APIRouter(prefix="/managed-cases", tags=["ManagedCases"], dependencies=[Depends(authenticate)])


@router.post("")
async def create_managed_case(
    sb: SandboxDep,
    simulator: SimulatorDep,
    caller: Caller,
    body: Annotated[CreateManagedCaseRequest, json_body(CreateManagedCaseRequest)],
) -> dict[str, Any]:
    case = intake.create(sb, caller, body)
    simulator.track(case)
    return views.case(sb, case)


@router.get("")
async def list_managed_cases(sb: SandboxDep, caller: Caller, query: CaseQueryDep) -> dict[str, Any]:
    cases = sb.store.cases
    pool = (cases[i] for i in query.ids if i in cases) if query.ids else cases.values()  # Ids: no full scan
    mine = (c for c in pool if c.managing_partner_id == caller.id)
    return views.case_list(sb, query, mine)


add_case_reads(router, MANAGED)


def _test_case(sb: Sandbox, caller: Partner, case_id: UUID, action: str) -> CaseRecord:
    case = managed_case(sb, caller, case_id)
    if not case.is_test:
        raise bad_request(
            f"{action} through /managed-cases works on test cases only; on production cases only the "
            "assigned collection partner can do it (POST /cases/{id}/payments).",
            "NotATestCase",
        )
    return case


@router.post("/{id}/payments")
async def record_test_payment(
    sb: SandboxDep,
    caller: Caller,
    case_id: CaseId,
    body: Annotated[TestPaymentRequest, json_body(TestPaymentRequest)],
) -> dict[str, Any]:
    case = _test_case(sb, caller, case_id, "Recording a payment")
    amount = money.cents(body.payment_amount)
    payments.not_partial_close(case, amount, body.close_case)
    new = payments.NewPayment(
        date=body.date, amount=amount, recipient="Creditor", commission_payment_status="Unpaid", creditor_only=True
    )
    recorded = payments.record(sb, case, new, body.close_case, None, partner_actor(caller.users[0]))
    return views.created_test_payment(case, recorded.payment, recorded.closed)


@router.put("/{id}/payments/{paymentId}")
async def update_test_payment(
    sb: SandboxDep,
    caller: Caller,
    case_id: CaseId,
    payment_id: PaymentId,
    body: Annotated[UpdatePaymentRequest, json_body(UpdatePaymentRequest)],
) -> dict[str, Any]:
    case = _test_case(sb, caller, case_id, "Editing a payment")
    payment = payments.update(
        sb, case, payments.find(case, payment_id), body, partner_actor(caller.users[0]), managed=True
    )
    return views.payment(case, payment)


@router.delete("/{id}/payments/{paymentId}", status_code=204)
async def delete_test_payment(
    sb: SandboxDep, caller: Caller, case_id: CaseId, payment_id: PaymentId, reopen: ReopenFlag = False
) -> Response:
    case = _test_case(sb, caller, case_id, "Deleting a payment")
    payments.delete(sb, case, payments.find(case, payment_id), reopen, partner_actor(caller.users[0]))
    return Response(status_code=204)
