"""``/test/*``: drive test cases through their lifecycle, delete them, and fire or replay their webhooks."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from debitura_provider.api.models import (
    AdvanceRequest,
    AdvanceTarget,
    CloseCode,
    FireWebhookRequest,
    Lifecycle,
)
from debitura_provider.sandbox.domain import events, lifecycle, money, payments, views
from debitura_provider.sandbox.domain.problems import bad_request, invalid_field, not_found, unprocessable
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.simulation import Simulator
from debitura_provider.sandbox.domain.state import Actor, CaseRecord, Partner
from debitura_provider.sandbox.edge.deps import Caller, CaseId, SandboxDep, SimulatorDep, authenticate, json_body
from debitura_provider.sandbox.edge.routers.webhooks import replay

router = APIRouter(prefix="/test", tags=["Testing"], dependencies=[Depends(authenticate)])

DRIVER = Actor(type="System", name="Test driver")
_CLOSE_TARGETS = {
    AdvanceTarget.CLOSED_PAID: CloseCode.PAID,
    AdvanceTarget.CLOSED_NO_PAYMENT: CloseCode.PRE_LEGAL_EXHAUSTED_NO_PAYMENT,
}


def owned_test_case(sb: Sandbox, caller: Partner, case_id: UUID) -> CaseRecord:
    """A case the caller submitted or collects (404 otherwise) that is a test case (400 otherwise)."""
    case = sb.store.cases.get(case_id)
    if case is None or caller.id not in (case.managing_partner_id, case.collection_partner_id):
        raise not_found(f"Case {case_id} not found or not owned by you.")
    if not case.is_test:
        raise bad_request(
            "This is a production case; the test endpoints work on test cases (isTest) only.", "NotATestCase"
        )
    return case


def state_of(case: CaseRecord) -> str:
    """The advance endpoint's state names, the spec's list only: "Active", "Closed:Paid", "Closed:NoPayment",
    or "Closed" for other close codes (and for a merged case, closed into another one)."""
    if case.lifecycle is Lifecycle.MERGED:
        return "Closed"
    if case.lifecycle is not Lifecycle.CLOSED:
        return case.lifecycle.api_name
    if case.close_code is CloseCode.PAID:
        return "Closed:Paid"
    if case.close_code is CloseCode.PRE_LEGAL_EXHAUSTED_NO_PAYMENT:
        return "Closed:NoPayment"
    return "Closed"


def advance(sb: Sandbox, case: CaseRecord, request: AdvanceRequest) -> bool:
    """Drive the case to the target through the same steps a partner takes; False when already there."""
    if request.to is AdvanceTarget.ACTIVE:
        if case.lifecycle is Lifecycle.ACTIVE or not case.is_open:
            return False
        lifecycle.activate(sb, case, DRIVER, "advanced by the test endpoint")
        return True
    code = _CLOSE_TARGETS[request.to]
    if case.lifecycle is Lifecycle.CLOSED:
        if case.close_code is code:
            return False
        raise bad_request(
            f"The case is already {state_of(case)}; it cannot also become {request.to.value}.", "AdvanceConflict"
        )
    lifecycle.require_open(case, "advancing")
    if code is CloseCode.PAID and request.amount is None:
        raise invalid_field("amount", "is required when advancing to Closed:Paid")
    if case.lifecycle not in lifecycle.PAYABLE:
        lifecycle.activate(sb, case, DRIVER, "advanced by the test endpoint")
    if request.amount is not None and code is CloseCode.PAID:
        new = payments.NewPayment(
            date=sb.now().date(),
            amount=money.cents(request.amount),
            recipient="Creditor",
            commission_payment_status="Unpaid",
            creditor_only=True,
        )
        payments.record(sb, case, new, False, None, DRIVER)
    comment = None if code is CloseCode.PAID else "Closed by the test endpoint."
    lifecycle.close(sb, case, code, comment, None, DRIVER, checked=False)
    return True


@router.post("/cases/{id}/advance")
async def advance_test_case(
    sb: SandboxDep, caller: Caller, case_id: CaseId, body: Annotated[AdvanceRequest, json_body(AdvanceRequest)]
) -> dict[str, Any]:
    case = owned_test_case(sb, caller, case_id)
    advanced = advance(sb, case, body)
    return {"advanced": advanced, "state": state_of(case)}


def _delete(sb: Sandbox, simulator: Simulator, case: CaseRecord) -> None:
    simulator.forget(case.id)
    for row in [e for e in sb.store.events.values() if e.case_id == case.id]:
        sb.dispatcher.drop(row.id)
    sb.store.delete_case(case)


@router.delete("/cases/{id}", status_code=204)
async def delete_test_case(sb: SandboxDep, simulator: SimulatorDep, caller: Caller, case_id: CaseId) -> Response:
    """Hard delete; idempotent: deleting an already deleted case of yours answers 204 again."""
    if case_id not in sb.store.cases and sb.store.tombstones.get(case_id) == caller.id:
        return Response(status_code=204)
    _delete(sb, simulator, owned_test_case(sb, caller, case_id))
    return Response(status_code=204)


@router.delete("/cases", status_code=204)
async def delete_test_cases_by_tag(
    sb: SandboxDep, simulator: SimulatorDep, caller: Caller, tag: str | None = None
) -> Response:
    """Hard-delete every case of yours with this tag; refused whole if any of them is a production case."""
    if not (tag and tag.strip()):
        raise invalid_field("tag", "is required (the tag the test cases were created with)")
    matched = [c for c in sb.store.cases.values() if c.tag == tag and c.managing_partner_id == caller.id]
    production = [c.reference for c in matched if not c.is_test]
    if production:
        raise bad_request(
            f"The tag matches production cases ({', '.join(production)}); nothing was deleted.", "ProductionCaseMatched"
        )
    for case in matched:
        _delete(sb, simulator, case)
    return Response(status_code=204)


@router.post("/cases/{id}/replay-last-event", response_model=None)
async def replay_last_event(sb: SandboxDep, caller: Caller, case_id: CaseId) -> dict[str, Any] | Response:
    """The spec: 400 for a production case or one not the caller's, 404 for no case or no event yet; neither
    answer has a body there."""
    case = sb.store.cases.get(case_id)
    if case is None:
        return Response(status_code=404)
    if not case.is_test or caller.id not in (case.managing_partner_id, case.collection_partner_id):
        return Response(status_code=400)
    rows = [e for e in sb.store.events.values() if e.case_id == case.id and e.partner_id == caller.id]
    if not rows:
        return Response(status_code=404)
    return replay(sb, caller, max(rows, key=lambda e: e.created_at).id)


@router.post("/webhooks/fire")
async def fire_test_webhook(
    sb: SandboxDep, caller: Caller, body: Annotated[FireWebhookRequest, json_body(FireWebhookRequest)]
) -> dict[str, Any]:
    case = owned_test_case(sb, caller, body.case_id)
    event = body.event.value
    if body.subscription_id is not None:
        sub = sb.store.subscriptions.get(body.subscription_id)
        if sub is None or sub.partner_id != caller.id or not sub.is_test_mode or not sub.is_active:
            raise bad_request(
                f"Subscription {body.subscription_id} is not an active test subscription of yours.",
                "InvalidSubscription",
            )
        targets = [sub]
    else:
        targets = [
            s
            for s in sb.store.subscriptions.values()
            if s.partner_id == caller.id and s.is_active and s.is_test_mode and event in s.events
        ]
    data = events.current(case, body.event)
    if data is None:
        raise unprocessable(f"Case {case.reference} has nothing to send as {event} yet.", "MissingEventData")
    count = sb.dispatcher.send(case, event, data, targets)
    return views.wire({"eventType": event, "caseId": case.id, "enqueuedCount": count})
