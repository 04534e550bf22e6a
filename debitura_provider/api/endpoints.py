"""Every operation of the Collection Partner API, each defined once.

Each function validates its arguments and returns a :class:`~debitura_provider.api._call.Call`;
:class:`~debitura_provider.api.client.DebituraClient` and
:class:`~debitura_provider.api.client.AsyncDebituraClient` expose each under the same name.
Bad input raises :class:`~debitura_provider.api.errors.RequestValidationError` here, so nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypedDict
from uuid import UUID

from typing_extensions import Unpack

from debitura_provider.api import models as m
from debitura_provider.api._call import (
    Call,
    check_idempotency_key,
    derive_idempotency_key,
    keyed,
    many,
    nothing,
    one,
    parse_model,
    repeated,
    uuid_arg,
)
from debitura_provider.api.errors import RequestValidationError

MAX_PAGE_SIZE = 100
MAX_FILE_BYTES = 25 * 1024 * 1024
ALLOWED_FILE_EXTENSIONS = (
    ".pdf",
    ".doc",
    ".docx",
    ".xls",
    ".xlsx",
    ".jpg",
    ".jpeg",
    ".png",
    ".txt",
    ".zip",
    ".csv",
    ".eml",
)

CaseId = UUID | str
Body = Mapping[str, Any]


class CaseFilters(TypedDict, total=False):
    """Filters shared by ``GET /managed-cases`` and ``GET /cases`` (and their iterators)."""

    page_size: int
    """1 to 100 (default 100)."""
    statuses: Iterable[m.Lifecycle | str]
    """Lifecycle names or labels, any case: ``"Active"``, ``"Pending Verification"``."""
    ids: Iterable[CaseId]
    debtor_ids: Iterable[CaseId]
    division_ids: Iterable[CaseId]
    sort: str
    """``"Field[:asc|desc],..."``, e.g. ``"DateUpdated:desc"``; unknown fields are ignored by the API."""


def _case_query(page: int, filters: CaseFilters) -> tuple[tuple[str, str], ...]:
    page_size = filters.get("page_size", MAX_PAGE_SIZE)
    if page < 1:
        raise RequestValidationError("list request", {"Page": ["must be 1 or more"]})
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise RequestValidationError("list request", {"PageSize": [f"must be 1 to {MAX_PAGE_SIZE}"]})
    try:
        names = [
            s.api_name if isinstance(s, m.Lifecycle) else m.Lifecycle.parse(s).api_name
            for s in filters.get("statuses", ())
        ]
    except ValueError as exc:
        raise RequestValidationError("list request", {"Statuses": [str(exc)]}) from None
    params: tuple[tuple[str, str], ...] = (("Page", str(page)), ("PageSize", str(page_size)))
    params += repeated("Statuses", names)
    for wire, key in (("Ids", "ids"), ("DebtorIds", "debtor_ids"), ("DivisionIds", "division_ids")):
        ids: Iterable[CaseId] = filters.get(key, ())  # type: ignore[assignment]
        params += repeated(wire, [str(uuid_arg(i, wire)) for i in ids])
    if filters.get("sort"):
        params += (("Sort", filters["sort"]),)
    return params


def _idempotent_post(path: str, body: Any, key: str | None, parse: Any) -> Call[Any]:
    chosen = check_idempotency_key(key) if key is not None else derive_idempotency_key(path, body)
    return Call("POST", path, parse, json=body, idempotency_key=chosen)


# --- Managed cases: what a managing partner refers and monitors ------------------------------------


def create_managed_case(
    request: m.CreateManagedCaseRequest | Body, *, idempotency_key: str | None = None
) -> Call[m.Case]:
    """Refer one invoice. Always sends an ``Idempotency-Key``, derived from the body unless given,
    so retrying (by the client or by Airflow) returns the first case instead of creating another."""
    body = parse_model(m.CreateManagedCaseRequest, request, "managed case").to_body()
    return _idempotent_post("/managed-cases", body, idempotency_key, one(m.Case))


def list_managed_cases(*, page: int = 1, **filters: Unpack[CaseFilters]) -> Call[m.CasePage]:
    """One page of the cases this partner referred (filters: :class:`CaseFilters`)."""
    params = _case_query(page, filters)
    return Call("GET", "/managed-cases", one(m.CasePage), params=params)


def list_managed_cases_by_id(ids: Iterable[CaseId], *, chunk_size: int = MAX_PAGE_SIZE) -> list[Call[m.CasePage]]:
    """The ``GET /managed-cases?Ids=...`` pages that cover ``ids``: ``ceil(N / chunk_size)`` requests.

    Ids are checked and de-duplicated first; a smaller chunk keeps URLs short. No ids, no calls.
    """
    if not 1 <= chunk_size <= MAX_PAGE_SIZE:
        raise RequestValidationError("list request", {"chunk_size": [f"must be 1 to {MAX_PAGE_SIZE}"]})
    unique = list(dict.fromkeys(str(uuid_arg(i, "Ids")) for i in ids))
    return [
        list_managed_cases(ids=chunk, page_size=len(chunk))
        for chunk in (unique[i : i + chunk_size] for i in range(0, len(unique), chunk_size))
    ]


def cases_by_id(pages: Iterable[m.CasePage]) -> dict[str, m.Case]:
    """The cases of the pages from :func:`list_managed_cases_by_id`, keyed by their id."""
    return {str(case.id): case for page in pages for case in page.cases}


def get_managed_case(case_id: CaseId) -> Call[m.Case]:
    """A referred case by its id."""
    return Call("GET", f"/managed-cases/{uuid_arg(case_id, 'id')}", one(m.Case))


def get_managed_case_by_reference(reference: str) -> Call[m.Case]:
    """A referred case by Debitura's case reference (e.g. ``Q8OAXF3W``)."""
    return Call("GET", f"/managed-cases/case-reference/{_segment(reference, 'caseReference')}", one(m.Case))


def get_managed_case_timeline(case_id: CaseId) -> Call[m.Timeline]:
    """The case's history: assignment, lifecycle changes, payments, notes."""
    return Call("GET", f"/managed-cases/{uuid_arg(case_id, 'id')}/timeline", one(m.Timeline))


def get_managed_case_chats(case_id: CaseId) -> Call[list[m.ChatMessage]]:
    """Chat between creditor and collection partner (read-only for the managing partner)."""
    return Call("GET", f"/managed-cases/{uuid_arg(case_id, 'id')}/chats", many(m.ChatMessage))


def get_managed_case_payments(case_id: CaseId) -> Call[list[m.Payment]]:
    """Payments on the case, newest first."""
    return Call("GET", f"/managed-cases/{uuid_arg(case_id, 'id')}/payments", many(m.Payment))


def get_managed_case_files(case_id: CaseId) -> Call[list[m.CaseFile]]:
    """Files on the case; their URLs are signed and expire."""
    return Call("GET", f"/managed-cases/{uuid_arg(case_id, 'id')}/files", many(m.CaseFile))


def record_test_payment(case_id: CaseId, request: m.TestPaymentRequest | Body) -> Call[m.TestPaymentResponse]:
    """Record a payment on a *test* managed case (Debitura answers 400 for a production case).

    The API takes no Idempotency-Key here, so a lost answer is not retried automatically.
    """
    body = parse_model(m.TestPaymentRequest, request, "test payment").to_body()
    return Call("POST", f"/managed-cases/{uuid_arg(case_id, 'id')}/payments", one(m.TestPaymentResponse), json=body)


def update_test_payment(case_id: CaseId, payment_id: CaseId, request: m.UpdatePaymentRequest | Body) -> Call[m.Payment]:
    """Edit a payment on a test managed case."""
    body = parse_model(m.UpdatePaymentRequest, request, "payment update").to_body()
    path = f"/managed-cases/{uuid_arg(case_id, 'id')}/payments/{uuid_arg(payment_id, 'paymentId')}"
    return Call("PUT", path, one(m.Payment), json=body)


def delete_test_payment(case_id: CaseId, payment_id: CaseId, *, reopen_case_if_needed: bool = False) -> Call[None]:
    """Delete a payment on a test managed case; ``reopen_case_if_needed`` lets a Paid case reopen."""
    path = f"/managed-cases/{uuid_arg(case_id, 'id')}/payments/{uuid_arg(payment_id, 'paymentId')}"
    return Call("DELETE", path, nothing, params=(("reopenCaseIfNeeded", _bool(reopen_case_if_needed)),))


# --- Cases: what a collection partner works (and a managing partner's own test cases) -------------


def list_cases(*, page: int = 1, include_test_cases: bool = False, **filters: Unpack[CaseFilters]) -> Call[m.CasePage]:
    """One page of the cases assigned to this partner; test cases only with ``include_test_cases``."""
    params = _case_query(page, filters)
    params += (("includeTestCases", _bool(include_test_cases)),)
    return Call("GET", "/cases", one(m.CasePage), params=params)


def get_case(case_id: CaseId) -> Call[m.Case]:
    """A case this partner works, or one of its own test cases."""
    return Call("GET", f"/cases/{uuid_arg(case_id, 'id')}", one(m.Case))


def get_case_by_reference(reference: str) -> Call[m.Case]:
    """A case by Debitura's reference."""
    return Call("GET", f"/cases/case-reference/{_segment(reference, 'caseReference')}", one(m.Case))


def get_case_by_partner_reference(reference: str) -> Call[m.Case]:
    """A case by the collection partner's own reference (set at start)."""
    return Call("GET", f"/cases/by-partner-reference/{_segment(reference, 'reference')}", one(m.Case))


def get_cases_by_partner_references(references: Iterable[str]) -> Call[dict[str, m.Case]]:
    """Up to 100 cases by partner reference; missing references are left out of the map."""
    refs = [r for r in references]
    if not 1 <= len(refs) <= MAX_PAGE_SIZE:
        raise RequestValidationError("lookup", {"references": [f"give 1 to {MAX_PAGE_SIZE} references"]})
    return Call("GET", "/cases/by-partner-reference", keyed(m.Case), params=(("references", ",".join(refs)),))


def get_case_by_creditor_reference(reference: str, creditor_id: CaseId) -> Call[m.Case]:
    """A case by the creditor's own reference (invoice number) within one creditor."""
    params = (("reference", reference), ("creditorId", str(uuid_arg(creditor_id, "creditorId"))))
    return Call("GET", "/cases/by-creditor-reference", one(m.Case), params=params)


def get_case_timeline(case_id: CaseId) -> Call[m.Timeline]:
    """A worked case's history."""
    return Call("GET", f"/cases/{uuid_arg(case_id, 'id')}/timeline", one(m.Timeline))


def get_case_chats(case_id: CaseId) -> Call[list[m.ChatMessage]]:
    """A worked case's chat, oldest first."""
    return Call("GET", f"/cases/{uuid_arg(case_id, 'id')}/chats", many(m.ChatMessage))


def send_case_chat(
    case_id: CaseId, request: m.SendChatRequest | Body, *, idempotency_key: str | None = None
) -> Call[m.ChatMessage]:
    """Message the creditor. The key is derived from the body, so a retry does not post twice."""
    body = parse_model(m.SendChatRequest, request, "chat message").to_body()
    return _idempotent_post(f"/cases/{uuid_arg(case_id, 'id')}/chats", body, idempotency_key, one(m.ChatMessage))


def get_case_payments(case_id: CaseId) -> Call[list[m.Payment]]:
    """A worked case's payments, newest first."""
    return Call("GET", f"/cases/{uuid_arg(case_id, 'id')}/payments", many(m.Payment))


def record_payment(
    case_id: CaseId, request: m.CreatePaymentRequest | Body, *, idempotency_key: str | None = None
) -> Call[m.CreatePaymentResponse]:
    """Record a collected payment; ``close_case`` closes as Paid when it settles the remainder."""
    body = parse_model(m.CreatePaymentRequest, request, "payment").to_body()
    path = f"/cases/{uuid_arg(case_id, 'id')}/payments"
    return _idempotent_post(path, body, idempotency_key, one(m.CreatePaymentResponse))


def update_payment(case_id: CaseId, payment_id: CaseId, request: m.UpdatePaymentRequest | Body) -> Call[m.Payment]:
    """Edit a recorded payment (409 when it would leave a Paid case owing, unless reopening)."""
    body = parse_model(m.UpdatePaymentRequest, request, "payment update").to_body()
    path = f"/cases/{uuid_arg(case_id, 'id')}/payments/{uuid_arg(payment_id, 'paymentId')}"
    return Call("PUT", path, one(m.Payment), json=body)


def delete_payment(case_id: CaseId, payment_id: CaseId, *, reopen_case_if_needed: bool = False) -> Call[None]:
    """Reverse a recorded payment."""
    path = f"/cases/{uuid_arg(case_id, 'id')}/payments/{uuid_arg(payment_id, 'paymentId')}"
    return Call("DELETE", path, nothing, params=(("reopenCaseIfNeeded", _bool(reopen_case_if_needed)),))


def get_case_files(case_id: CaseId) -> Call[list[m.CaseFile]]:
    """A worked case's files."""
    return Call("GET", f"/cases/{uuid_arg(case_id, 'id')}/files", many(m.CaseFile))


def upload_case_file(
    case_id: CaseId,
    file_name: str,
    content: bytes,
    *,
    document_type: str | None = None,
    description: str | None = None,
) -> Call[m.CaseFile]:
    """Attach a file (25 MB at most; pdf, office, image, txt, zip, csv or eml)."""
    errors: dict[str, list[str]] = {}
    if len(content) > MAX_FILE_BYTES:
        errors["File"] = ["is larger than 25 MB"]
    if not file_name.lower().endswith(ALLOWED_FILE_EXTENSIONS):
        errors["File"] = [f"extension not allowed; use one of {', '.join(ALLOWED_FILE_EXTENSIONS)}"]
    if description is not None and len(description) > 500:
        errors["Description"] = ["must be at most 500 characters"]
    if errors:
        raise RequestValidationError("file upload", errors)
    data = {k: v for k, v in (("DocumentType", document_type), ("Description", description)) if v is not None}
    files = {"File": (file_name, content, "application/octet-stream")}
    return Call("POST", f"/cases/{uuid_arg(case_id, 'id')}/files", one(m.CaseFile), files=files, data=data)


def add_case_note(case_id: CaseId, request: m.CreateNoteRequest | Body) -> Call[m.Note]:
    """Add a note (shared with the creditor)."""
    body = parse_model(m.CreateNoteRequest, request, "note").to_body()
    return Call("POST", f"/cases/{uuid_arg(case_id, 'id')}/notes", one(m.Note), json=body)


def close_case(case_id: CaseId, request: m.CloseCaseRequest | Body) -> Call[m.CloseCaseResponse]:
    """Close a worked case with a close code."""
    body = parse_model(m.CloseCaseRequest, request, "close request").to_body()
    return Call("POST", f"/cases/{uuid_arg(case_id, 'id')}/close", one(m.CloseCaseResponse), json=body)


def start_case(case_id: CaseId, request: m.StartCaseRequest | Body) -> Call[m.StartCaseResponse]:
    """Accept a case in Pending Verification, making it Active."""
    body = parse_model(m.StartCaseRequest, request, "start request").to_body()
    return Call("POST", f"/cases/{uuid_arg(case_id, 'id')}/start", one(m.StartCaseResponse), json=body)


def update_case_fees(case_id: CaseId, request: m.UpdateFeesRequest | Body) -> Call[m.UpdateFeesResponse]:
    """Change principal or fees; a 409 asks to confirm a success-fee change."""
    body = parse_model(m.UpdateFeesRequest, request, "fee update").to_body()
    return Call("PUT", f"/cases/{uuid_arg(case_id, 'id')}/fees", one(m.UpdateFeesResponse), json=body)


def get_exclusive_period(case_id: CaseId) -> Call[m.ExclusivePeriod]:
    """The partner's exclusive period on the case and its extensions."""
    return Call("GET", f"/cases/{uuid_arg(case_id, 'id')}/exclusive-period", one(m.ExclusivePeriod))


def get_case_validation(case_id: CaseId) -> Call[m.CaseValidationStatus]:
    """What information the case still needs."""
    return Call("GET", f"/cases/{uuid_arg(case_id, 'id')}/validation", one(m.CaseValidationStatus))


def create_ingestion_job(
    request: m.CreateIngestionJobRequest | Body, *, idempotency_key: str | None = None
) -> Call[m.IngestionJobCreated]:
    """Queue notes for many cases at once (202)."""
    body = parse_model(m.CreateIngestionJobRequest, request, "ingestion job").to_body()
    return _idempotent_post("/ingestion-jobs", body, idempotency_key, one(m.IngestionJobCreated))


def get_ingestion_job(job_id: CaseId) -> Call[m.IngestionJobStatus]:
    """Progress of an ingestion job."""
    return Call("GET", f"/ingestion-jobs/{uuid_arg(job_id, 'jobId')}", one(m.IngestionJobStatus))


# --- The partner ----------------------------------------------------------------------------------


def get_me() -> Call[m.Me]:
    """The partner owning the API key: the cheapest authenticated call, used to test a connection."""
    return Call("GET", "/me", one(m.Me))


def list_users(*, page: int = 1, page_size: int = 50) -> Call[m.UserPage]:
    """The partner's portal users (to name chat and start authors)."""
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise RequestValidationError("list request", {"PageSize": [f"must be 1 to {MAX_PAGE_SIZE}"]})
    return Call("GET", "/users", one(m.UserPage), params=(("Page", str(page)), ("PageSize", str(page_size))))


# --- Test cases: drive isTest cases without a collection partner ---------------------------------


def advance_test_case(case_id: CaseId, request: m.AdvanceRequest | Body) -> Call[m.AdvanceResult]:
    """Move a test case to Active, Closed:Paid or Closed:NoPayment, firing the real events."""
    body = parse_model(m.AdvanceRequest, request, "advance request").to_body()
    return Call("POST", f"/test/cases/{uuid_arg(case_id, 'id')}/advance", one(m.AdvanceResult), json=body)


def delete_test_case(case_id: CaseId) -> Call[None]:
    """Hard-delete one test case (idempotent)."""
    return Call("DELETE", f"/test/cases/{uuid_arg(case_id, 'id')}", nothing)


def delete_test_cases_by_tag(tag: str) -> Call[None]:
    """Hard-delete every test case with this tag: the RESET step of a test run."""
    if not tag or len(tag) > 100:
        raise RequestValidationError("request", {"tag": ["must be 1 to 100 characters"]})
    return Call("DELETE", "/test/cases", nothing, params=(("tag", tag),))


def replay_last_test_event(case_id: CaseId) -> Call[m.ReplayedEvent]:
    """Deliver a test case's last webhook event again."""
    return Call("POST", f"/test/cases/{uuid_arg(case_id, 'id')}/replay-last-event", one(m.ReplayedEvent))


def fire_test_webhook(request: m.FireWebhookRequest | Body) -> Call[m.FireWebhookResult]:
    """Send one event for a test case to the subscriptions (or the one named)."""
    body = parse_model(m.FireWebhookRequest, request, "fire request").to_body()
    return Call("POST", "/test/webhooks/fire", one(m.FireWebhookResult), json=body)


# --- Webhooks ------------------------------------------------------------------------------------


def list_webhook_events(case_id: CaseId, *, since: datetime | None = None) -> Call[list[m.WebhookEventRecord]]:
    """The delivery log of one case, newest first."""
    params: tuple[tuple[str, str], ...] = (("caseId", str(uuid_arg(case_id, "caseId"))),)
    if since is not None:
        params += (("since", since.isoformat()),)
    return Call("GET", "/webhooks/events", many(m.WebhookEventRecord), params=params)


def replay_webhook_event(event_id: CaseId) -> Call[m.ReplayedEvent]:
    """Queue one logged event for delivery again."""
    return Call("POST", f"/webhooks/events/{uuid_arg(event_id, 'id')}/replay", one(m.ReplayedEvent))


def list_webhooks() -> Call[list[m.WebhookSubscription]]:
    """All subscriptions (secrets are never listed)."""
    return Call("GET", "/webhooks", many(m.WebhookSubscription))


def create_webhook(request: m.CreateWebhookRequest | Body) -> Call[m.WebhookSubscription]:
    """Subscribe a URL; the response carries the secret, once."""
    body = parse_model(m.CreateWebhookRequest, request, "webhook").to_body()
    return Call("POST", "/webhooks", one(m.WebhookSubscription), json=body)


def get_webhook(webhook_id: CaseId) -> Call[m.WebhookSubscription]:
    """One subscription."""
    return Call("GET", f"/webhooks/{uuid_arg(webhook_id, 'id')}", one(m.WebhookSubscription))


def update_webhook(webhook_id: CaseId, request: m.UpdateWebhookRequest | Body) -> Call[m.WebhookSubscription]:
    """Change a subscription; ``regenerate_secret`` re-keys it and returns the new secret once."""
    body = parse_model(m.UpdateWebhookRequest, request, "webhook update").to_body()
    return Call("PUT", f"/webhooks/{uuid_arg(webhook_id, 'id')}", one(m.WebhookSubscription), json=body)


def delete_webhook(webhook_id: CaseId) -> Call[None]:
    """Remove a subscription."""
    return Call("DELETE", f"/webhooks/{uuid_arg(webhook_id, 'id')}", nothing)


def _segment(value: str, name: str) -> str:
    text = value.strip()
    if not text or "/" in text:
        raise RequestValidationError("request", {name: ["must be a non-empty reference without '/'"]})
    return text


def _bool(value: bool) -> str:
    return "true" if value else "false"
