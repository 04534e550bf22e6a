"""Every client operation sends the method, path, query, body and headers the spec defines.

Each row is run through both the sync and the async client, which share one endpoint definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from debitura_provider import __version__
from debitura_provider.api import AsyncDebituraClient, DebituraClient
from tests.api.conftest import BASE, KEY
from tests.api.samples import CASE, CASE_ID, CREATE_REQUEST, PAYMENT, PAYMENT_ID

WEBHOOK = {"id": PAYMENT_ID, "url": "https://agency.example/hooks", "events": ["payment.created"], "isActive": True}
TIMELINE = {"items": [{"type": "Created", "title": "Case created", "description": "x", "date": "2026-11-20T10:00:00"}]}
CHAT = {"id": PAYMENT_ID, "message": "hello", "role": 0, "roleLabel": "Partner", "user": {"id": 4, "email": "a@b.dk"}}
FILE = {"id": PAYMENT_ID, "caseId": CASE_ID, "fileName": "invoice.pdf", "url": "https://blob/x?se=1"}
NOTE = {
    "id": PAYMENT_ID,
    "caseReference": "Q8OAXF3W",
    "title": "Note",
    "visibility": "Shared",
    "createdBy": {"userName": "Ann"},
}
PAGE = {
    "page": {"currentPage": 1, "pageSize": 100, "totalPages": 1, "responseCount": 1, "totalResults": 1},
    "cases": [CASE],
}
MULTIPART = object()
PAYMENT_BODY = {"date": "2026-11-21", "paymentAmount": 500.0, "paymentRecipient": "CollectionPartner"}


@dataclass
class Row:
    op: str
    args: tuple[Any, ...]
    method: str
    template: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    query: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    status: int = 200
    response: Any = None
    idempotent_key: bool = False

    @property
    def path(self) -> str:
        """The template filled with the ids the row's arguments use (webhook ids are PAYMENT_ID)."""
        webhook = self.template.startswith("/webhooks/")
        return self.template.format(
            id=PAYMENT_ID if webhook else CASE_ID,
            paymentId=PAYMENT_ID,
            jobId=PAYMENT_ID,
            caseReference="Q8OAXF3W",
            reference="GET-42",
        )


ROWS = [
    Row(
        "create_managed_case",
        (CREATE_REQUEST,),
        "POST",
        "/managed-cases",
        body=CREATE_REQUEST,
        response=CASE,
        idempotent_key=True,
    ),
    Row(
        "list_managed_cases",
        (),
        "GET",
        "/managed-cases",
        kwargs={
            "page": 2,
            "page_size": 50,
            "statuses": ["active", "Pending Verification"],
            "ids": [CASE_ID],
            "debtor_ids": [PAYMENT_ID],
            "division_ids": [CASE_ID],
            "sort": "DateUpdated:desc",
        },
        query=[
            ("Page", "2"),
            ("PageSize", "50"),
            ("Statuses", "Active"),
            ("Statuses", "PendingVerification"),
            ("Ids", CASE_ID),
            ("DebtorIds", PAYMENT_ID),
            ("DivisionIds", CASE_ID),
            ("Sort", "DateUpdated:desc"),
        ],
        response=PAGE,
    ),
    Row("get_managed_case", (CASE_ID,), "GET", "/managed-cases/{id}", response=CASE),
    Row(
        "get_managed_case_by_reference",
        ("Q8OAXF3W",),
        "GET",
        "/managed-cases/case-reference/{caseReference}",
        response=CASE,
    ),
    Row("get_managed_case_timeline", (CASE_ID,), "GET", "/managed-cases/{id}/timeline", response=TIMELINE),
    Row("get_managed_case_chats", (CASE_ID,), "GET", "/managed-cases/{id}/chats", response=[CHAT]),
    Row("get_managed_case_payments", (CASE_ID,), "GET", "/managed-cases/{id}/payments", response=[PAYMENT]),
    Row("get_managed_case_files", (CASE_ID,), "GET", "/managed-cases/{id}/files", response=[FILE]),
    Row(
        "record_test_payment",
        (CASE_ID, {"date": "2026-11-21", "paymentAmount": 500, "closeCase": False}),
        "POST",
        "/managed-cases/{id}/payments",
        body={"date": "2026-11-21", "paymentAmount": 500.0, "closeCase": False},
        response={"paymentId": PAYMENT_ID, "caseReference": "Q8OAXF3W", "remainingAmount": 14500.0},
    ),
    Row(
        "update_test_payment",
        (CASE_ID, PAYMENT_ID, PAYMENT_BODY),
        "PUT",
        "/managed-cases/{id}/payments/{paymentId}",
        body={**PAYMENT_BODY, "reopenCaseIfNeeded": False},
        response=PAYMENT,
    ),
    Row(
        "delete_test_payment",
        (CASE_ID, PAYMENT_ID),
        "DELETE",
        "/managed-cases/{id}/payments/{paymentId}",
        kwargs={"reopen_case_if_needed": True},
        query=[("reopenCaseIfNeeded", "true")],
        status=204,
    ),
    Row(
        "list_cases",
        (),
        "GET",
        "/cases",
        kwargs={"include_test_cases": True},
        query=[("Page", "1"), ("PageSize", "100"), ("includeTestCases", "true")],
        response=PAGE,
    ),
    Row("get_case", (CASE_ID,), "GET", "/cases/{id}", response=CASE),
    Row("get_case_by_reference", ("Q8OAXF3W",), "GET", "/cases/case-reference/{caseReference}", response=CASE),
    Row("get_case_by_partner_reference", ("GET-42",), "GET", "/cases/by-partner-reference/{reference}", response=CASE),
    Row(
        "get_cases_by_partner_references",
        (["a", "b"],),
        "GET",
        "/cases/by-partner-reference",
        query=[("references", "a,b")],
        response={"a": CASE},
    ),
    Row(
        "get_case_by_creditor_reference",
        ("INV-1", PAYMENT_ID),
        "GET",
        "/cases/by-creditor-reference",
        query=[("reference", "INV-1"), ("creditorId", PAYMENT_ID)],
        response=CASE,
    ),
    Row("get_case_timeline", (CASE_ID,), "GET", "/cases/{id}/timeline", response=TIMELINE),
    Row("get_case_chats", (CASE_ID,), "GET", "/cases/{id}/chats", response=[CHAT]),
    Row(
        "send_case_chat",
        (CASE_ID, {"message": "hi", "userEmail": "a@b.dk"}),
        "POST",
        "/cases/{id}/chats",
        body={"message": "hi", "userEmail": "a@b.dk"},
        response=CHAT,
        idempotent_key=True,
    ),
    Row("get_case_payments", (CASE_ID,), "GET", "/cases/{id}/payments", response=[PAYMENT]),
    Row(
        "record_payment",
        (CASE_ID, PAYMENT_BODY),
        "POST",
        "/cases/{id}/payments",
        body={**PAYMENT_BODY, "closeCase": False, "createUnpaidCommissionFollowUp": True},
        response={
            "paymentId": PAYMENT_ID,
            "caseReference": "Q8OAXF3W",
            "paymentRecipient": "CollectionPartner",
            "commissionPaymentStatus": "Paid",
        },
        idempotent_key=True,
    ),
    Row(
        "update_payment",
        (CASE_ID, PAYMENT_ID, PAYMENT_BODY),
        "PUT",
        "/cases/{id}/payments/{paymentId}",
        body={**PAYMENT_BODY, "reopenCaseIfNeeded": False},
        response=PAYMENT,
    ),
    Row(
        "delete_payment",
        (CASE_ID, PAYMENT_ID),
        "DELETE",
        "/cases/{id}/payments/{paymentId}",
        query=[("reopenCaseIfNeeded", "false")],
        status=204,
    ),
    Row("get_case_files", (CASE_ID,), "GET", "/cases/{id}/files", response=[FILE]),
    Row(
        "upload_case_file",
        (CASE_ID, "invoice.pdf", b"%PDF-1.4 test"),
        "POST",
        "/cases/{id}/files",
        kwargs={"document_type": "OriginalInvoice", "description": "The invoice"},
        body=MULTIPART,
        response=FILE,
    ),
    Row(
        "add_case_note",
        (CASE_ID, {"description": "Called debtor"}),
        "POST",
        "/cases/{id}/notes",
        body={"description": "Called debtor"},
        response=NOTE,
    ),
    Row(
        "close_case",
        (CASE_ID, {"closeCode": "debtor untraceable"}),
        "POST",
        "/cases/{id}/close",
        body={"closeCode": "DebtorUntraceable"},
        response={
            "caseReference": "Q8OAXF3W",
            "closeCode": "DebtorUntraceable",
            "closeCodeDescription": "Debtor Untraceable",
        },
    ),
    Row(
        "start_case",
        (CASE_ID, {"welcomeMessage": "Hello", "userEmail": "a@b.dk"}),
        "POST",
        "/cases/{id}/start",
        body={
            "welcomeMessage": "Hello",
            "userEmail": "a@b.dk",
            "interestFees": 0.0,
            "reminderFees": 0.0,
            "collectionFees": 0.0,
        },
        response={"caseId": CASE_ID, "status": "Active"},
    ),
    Row(
        "update_case_fees",
        (CASE_ID, {"reminderFees": 10}),
        "PUT",
        "/cases/{id}/fees",
        body={
            "interestFees": 0.0,
            "reminderFees": 10.0,
            "collectionFees": 0.0,
            "confirmPriceChange": False,
            "keepIntentionalRate": False,
        },
        response={"caseId": CASE_ID, "remainder": 15010.0},
    ),
    Row(
        "get_exclusive_period",
        (CASE_ID,),
        "GET",
        "/cases/{id}/exclusive-period",
        response={"daysRemaining": 12, "status": "Active"},
    ),
    Row("get_case_validation", (CASE_ID,), "GET", "/cases/{id}/validation", response={"needsInfo": False}),
    Row(
        "create_ingestion_job",
        ({"rows": [{"caseId": CASE_ID, "description": "n"}]},),
        "POST",
        "/ingestion-jobs",
        body={"rows": [{"type": 0, "caseId": CASE_ID, "description": "n"}]},
        status=202,
        response={"jobId": PAYMENT_ID, "rowsQueued": 1},
        idempotent_key=True,
    ),
    Row("get_ingestion_job", (PAYMENT_ID,), "GET", "/ingestion-jobs/{jobId}", response={"status": 2}),
    Row("get_me", (), "GET", "/me", response={"id": CASE_ID, "companyName": "Nordic Recovery"}),
    Row(
        "list_users",
        (),
        "GET",
        "/users",
        query=[("Page", "1"), ("PageSize", "50")],
        response={"page": PAGE["page"], "users": [{"id": CASE_ID, "email": "a@b.dk"}]},
    ),
    Row(
        "advance_test_case",
        (CASE_ID, {"to": "Closed:Paid"}),
        "POST",
        "/test/cases/{id}/advance",
        body={"to": "Closed:Paid"},
        response={"advanced": True, "state": "Closed:Paid"},
    ),
    Row("delete_test_case", (CASE_ID,), "DELETE", "/test/cases/{id}", status=204),
    Row(
        "delete_test_cases_by_tag",
        ("suite-run-1",),
        "DELETE",
        "/test/cases",
        query=[("tag", "suite-run-1")],
        status=204,
    ),
    Row(
        "replay_last_test_event",
        (CASE_ID,),
        "POST",
        "/test/cases/{id}/replay-last-event",
        response={"eventId": PAYMENT_ID, "eventType": "case.updated"},
    ),
    Row(
        "fire_test_webhook",
        ({"event": "case.updated", "caseId": CASE_ID},),
        "POST",
        "/test/webhooks/fire",
        body={"event": "case.updated", "caseId": CASE_ID},
        response={"eventType": "case.updated", "enqueuedCount": 1},
    ),
    Row(
        "list_webhook_events",
        (CASE_ID,),
        "GET",
        "/webhooks/events",
        query=[("caseId", CASE_ID)],
        response=[{"id": PAYMENT_ID, "eventType": "case.updated", "payload": "{}", "attemptCount": 1}],
    ),
    Row(
        "replay_webhook_event", (PAYMENT_ID,), "POST", "/webhooks/events/{id}/replay", response={"eventId": PAYMENT_ID}
    ),
    Row("list_webhooks", (), "GET", "/webhooks", response=[WEBHOOK]),
    Row(
        "create_webhook",
        ({"url": "https://agency.example/hooks", "events": ["payment.created"]},),
        "POST",
        "/webhooks",
        body={"url": "https://agency.example/hooks", "events": ["payment.created"], "isTestMode": False},
        status=201,
        response={**WEBHOOK, "secret": "c2VjcmV0"},
    ),
    Row("get_webhook", (PAYMENT_ID,), "GET", "/webhooks/{id}", response=WEBHOOK),
    Row(
        "update_webhook",
        (PAYMENT_ID, {"regenerateSecret": True}),
        "PUT",
        "/webhooks/{id}",
        body={"regenerateSecret": True},
        response=WEBHOOK,
    ),
    Row("delete_webhook", (PAYMENT_ID,), "DELETE", "/webhooks/{id}", status=204),
]


def _mock(row: Row) -> respx.Route:
    content = b"" if row.response is None else json.dumps(row.response).encode()
    return respx.route(method=row.method, url=f"{BASE}{row.path}").mock(
        return_value=httpx.Response(row.status, content=content, headers={"Content-Type": "application/json"})
    )


def _check(row: Row, route: respx.Route) -> None:
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["XApiKey"] == KEY
    assert request.headers["User-Agent"].startswith(f"airflow-provider-debitura/{__version__}")
    assert request.headers["Accept"] == "application/json"
    assert list(request.url.params.multi_items()) == row.query
    if row.body is MULTIPART:
        assert request.headers["Content-Type"].startswith("multipart/form-data")
        for part in (b'name="File"; filename="invoice.pdf"', b"%PDF-1.4 test", b"OriginalInvoice", b"The invoice"):
            assert part in request.content
    elif row.body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == row.body
    assert ("Idempotency-Key" in request.headers) is row.idempotent_key


def test_every_spec_operation_has_a_row() -> None:
    from debitura_provider.api.client import _Operations

    declared = {name for name in vars(_Operations) if not name.startswith("_")}
    assert declared == {row.op for row in ROWS}
    assert len(ROWS) == 48  # the spec's 48 operations, one row each


def test_rows_cover_every_operation_of_the_spec(openapi_spec: dict[str, Any]) -> None:
    spec_ops = {
        (method.upper(), path)
        for path, item in openapi_spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }

    covered = {(row.method, row.template) for row in ROWS}
    assert covered == spec_ops


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.op)
@respx.mock
def test_sync_operation(row: Row, client: DebituraClient) -> None:
    route = _mock(row)
    result = getattr(client, row.op)(*row.args, **row.kwargs)
    _check(row, route)
    assert (result is None) is (row.response is None)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.op)
@respx.mock
async def test_async_operation(row: Row, aclient: AsyncDebituraClient) -> None:
    route = _mock(row)
    result = await getattr(aclient, row.op)(*row.args, **row.kwargs)
    _check(row, route)
    assert (result is None) is (row.response is None)


@respx.mock
def test_responses_parse_into_models_and_tolerate_unknown_fields(client: DebituraClient) -> None:
    respx.get(f"{BASE}/managed-cases/{CASE_ID}").respond(json=CASE)
    case = client.get_managed_case(CASE_ID)
    assert case.reference == "Q8OAXF3W"
    assert case.is_test_case is True
    assert case.date_created is not None and case.date_created.tzinfo is not None  # naive read as UTC
    assert case.lifecycle_state is not None and case.lifecycle_state.api_name == "PendingVerification"


@respx.mock
def test_webhook_secret_is_hidden_in_reprs(client: DebituraClient) -> None:
    respx.post(f"{BASE}/webhooks").respond(201, json={**WEBHOOK, "secret": "c2VjcmV0LXZhbHVl"})
    sub = client.create_webhook({"url": "https://agency.example/hooks", "events": ["payment.created"]})
    assert sub.secret is not None and sub.secret.get_secret_value() == "c2VjcmV0LXZhbHVl"
    assert "c2VjcmV0LXZhbHVl" not in repr(sub) and "c2VjcmV0LXZhbHVl" not in str(sub)
