"""The foundation's client against the sandbox over real HTTP: every managed-case operation and the test endpoints.

Both sides parse with the same models, so these tests catch a sandbox and a client that drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from debitura_provider.api import UNLIMITED, AsyncDebituraClient, DebituraClient
from debitura_provider.api.errors import BadRequestError, BusinessRuleError, NotFoundError
from debitura_provider.api.models import AdvanceTarget, Lifecycle
from debitura_provider.sandbox import SandboxServer
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import Inbox, case_body, wait_for


@pytest.fixture
def debitura(sandbox: SandboxServer) -> Iterator[DebituraClient]:
    with DebituraClient(sandbox.api_key, sandbox.base_url, rate_limits=UNLIMITED) as c:
        yield c


def request(**overrides: Any) -> dict[str, Any]:
    body = case_body(**overrides)
    body["tag"] = overrides.get("tag", "client-tests")
    return body


def test_every_managed_case_operation_with_the_sync_client(debitura: DebituraClient, inbox: Inbox) -> None:
    created = debitura.create_managed_case(request())
    assert created.lifecycle_state is Lifecycle.PENDING_VERIFICATION_INTERNAL
    assert debitura.create_managed_case(request(creditorReference=created.creditor_reference)).id == created.id, (
        "the derived Idempotency-Key returns the first case for the same body"
    )
    assert debitura.get_managed_case(created.id).reference == created.reference
    assert debitura.get_managed_case_by_reference(created.reference or "").id == created.id

    assert debitura.advance_test_case(created.id, {"to": "Active"}).advanced is True
    paid = debitura.record_test_payment(created.id, {"date": date(2026, 2, 1), "payment_amount": 400.0})
    assert (paid.remaining_amount, paid.case_closed) == (600.0, False)
    [payment] = debitura.get_managed_case_payments(created.id)
    assert (payment.id, payment.gross_amount, payment.currency) == (paid.payment_id, 400.0, "EUR")
    edited = debitura.update_test_payment(
        created.id,
        payment.id,
        {
            "date": date(2026, 2, 2),
            "payment_amount": 450.0,
            "payment_recipient": "Creditor",
            "commission_payment_status": "Unpaid",
        },
    )
    assert edited.gross_amount == 450.0
    debitura.delete_test_payment(created.id, payment.id)
    assert debitura.get_managed_case_payments(created.id) == []
    assert debitura.get_managed_case(created.id).remainder == 1000.0

    timeline = debitura.get_managed_case_timeline(created.id)
    assert [i.type for i in timeline.items][-3:] == ["PaymentRegistered", "PaymentUpdated", "PaymentDeleted"]
    assert debitura.get_managed_case_chats(created.id) == []
    assert debitura.get_managed_case_files(created.id) == []

    with pytest.raises(BadRequestError, match="closeCase"):
        debitura.record_test_payment(created.id, {"date": date(2026, 2, 1), "payment_amount": 1.0, "close_case": True})
    result = debitura.advance_test_case(created.id, {"to": AdvanceTarget.CLOSED_PAID, "amount": 1000.0})
    assert (result.advanced, result.state) == (True, "Closed:Paid")
    closed = debitura.get_managed_case(created.id)
    assert (closed.lifecycle_state, closed.close_code) == (Lifecycle.CLOSED, "Paid")

    debitura.delete_test_case(created.id)
    debitura.delete_test_case(created.id)
    with pytest.raises(NotFoundError):
        debitura.get_managed_case(created.id)


def test_listing_pages_filters_and_iterates(debitura: DebituraClient) -> None:
    ids = [debitura.create_managed_case(request(amountToRecover=100.0 + n)).id for n in range(5)]
    first = debitura.list_managed_cases(ids=ids, page_size=2, sort="GrossAmount:asc")
    assert (first.page.total_results, first.page.total_pages, len(first.cases)) == (5, 3, 2)
    assert [c.gross_amount for c in first.cases] == [100.0, 101.0]
    every = list(debitura.iter_managed_cases(ids=ids, page_size=2, sort="GrossAmount:desc"))
    assert [c.gross_amount for c in every] == [104.0, 103.0, 102.0, 101.0, 100.0]
    debitura.advance_test_case(ids[0], {"to": "Active"})
    assert [c.id for c in debitura.iter_managed_cases(ids=ids, statuses=[Lifecycle.ACTIVE])] == [ids[0]]
    assert {c.id for c in debitura.iter_cases(ids=ids, include_test_cases=True)} <= set(ids)


def test_business_errors_reach_the_client_as_typed_exceptions(debitura: DebituraClient) -> None:
    with pytest.raises(BusinessRuleError) as raised:
        debitura.create_managed_case(
            request(isTest=False, debtor={"type": "Person", "name": "Taro Yamada", "countryAlpha2": "JP"})
        )
    assert raised.value.error_types == ["NoPartnerAvailable"]


def test_the_test_endpoints_and_the_event_log(sandbox_factory: SandboxFactory, inbox: Inbox) -> None:
    with (
        sandbox_factory() as server,
        DebituraClient(server.api_key, server.base_url, rate_limits=UNLIMITED) as debitura,
    ):
        exercise_test_endpoints(debitura, inbox)


def exercise_test_endpoints(debitura: DebituraClient, inbox: Inbox) -> None:
    sub = debitura.create_webhook({"url": inbox.url, "events": ["case.updated", "case.closed"], "is_test_mode": True})
    try:
        assert sub.secret is not None
        case = debitura.create_managed_case(request(tag="client-tag"))
        debitura.advance_test_case(case.id, {"to": "Closed:NoPayment"})
        events = wait_for(lambda: (e := debitura.list_webhook_events(case.id)) and len(e) >= 2 and e, "events")
        assert {e.event_type for e in events} == {"case.updated", "case.closed"}
        replayed = debitura.replay_webhook_event(events[0].id)
        assert replayed.event_id == events[0].id
        assert debitura.replay_last_test_event(case.id).subscription_id == sub.id
        fired = debitura.fire_test_webhook({"event": "case.closed", "case_id": case.id})
        assert fired.enqueued_count == 1
        assert [s.id for s in debitura.list_webhooks() if s.id == sub.id] == [sub.id]
        assert debitura.get_webhook(sub.id).secret is None
        debitura.delete_test_cases_by_tag("client-tag")
        with pytest.raises(NotFoundError):
            debitura.get_managed_case(case.id)
    finally:
        debitura.delete_webhook(sub.id)


async def test_every_managed_case_operation_with_the_async_client(sandbox: SandboxServer) -> None:
    async with AsyncDebituraClient(sandbox.api_key, sandbox.base_url, rate_limits=UNLIMITED) as debitura:
        created = await debitura.create_managed_case(request())
        assert (await debitura.get_managed_case(created.id)).id == created.id
        assert (await debitura.get_managed_case_by_reference(created.reference or "")).id == created.id
        await debitura.advance_test_case(created.id, {"to": "Active"})
        paid = await debitura.record_test_payment(
            created.id, {"date": date(2026, 2, 1), "payment_amount": 1000.0, "close_case": True}
        )
        assert (paid.case_closed, paid.remaining_amount) == (True, 0.0)
        [payment] = await debitura.get_managed_case_payments(created.id)
        await debitura.update_test_payment(
            created.id,
            payment.id,
            {
                "date": date(2026, 2, 1),
                "payment_amount": 900.0,
                "payment_recipient": "Creditor",
                "commission_payment_status": "Unpaid",
                "reopen_case_if_needed": True,
            },
        )
        assert (await debitura.get_managed_case(created.id)).lifecycle_state is Lifecycle.ACTIVE
        await debitura.delete_test_payment(created.id, payment.id)
        assert (await debitura.get_managed_case_timeline(created.id)).items
        assert await debitura.get_managed_case_chats(created.id) == []
        assert await debitura.get_managed_case_files(created.id) == []
        page = await debitura.list_managed_cases(ids=[created.id])
        assert [c.id for c in page.cases] == [created.id]
        assert [c.id async for c in debitura.iter_managed_cases(ids=[created.id])] == [created.id]
        await debitura.delete_test_case(created.id)
