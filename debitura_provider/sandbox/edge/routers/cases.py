"""``/cases``: what a collection partner works (and a managing partner's own test cases)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from debitura_provider.api.models import (
    CloseCaseRequest,
    CloseCode,
    CreateNoteRequest,
    CreatePaymentRequest,
    Lifecycle,
    PaymentRecipient,
    SendChatRequest,
    StartCaseRequest,
    UpdateFeesRequest,
    UpdatePaymentRequest,
)
from debitura_provider.sandbox.domain import lifecycle, money, payments, views
from debitura_provider.sandbox.domain.problems import (
    api_error,
    business_error,
    invalid_field,
    invalid_fields,
    not_found,
)
from debitura_provider.sandbox.domain.queries import WORKED, visible_to_partner, worked_case
from debitura_provider.sandbox.domain.runtime import Sandbox, partner_actor
from debitura_provider.sandbox.domain.state import CaseRecord, FileRecord, NoteRecord, Partner
from debitura_provider.sandbox.edge.deps import (
    Caller,
    CaseId,
    CaseQueryDep,
    PaymentId,
    ReopenFlag,
    SandboxDep,
    authenticate,
    json_body,
    parse_uuid,
)
from debitura_provider.sandbox.edge.routers.case_reads import add_case_reads

router = APIRouter(prefix="/cases", tags=["Cases"], dependencies=[Depends(authenticate)])

MAX_FILE_BYTES = 25 * 1024 * 1024
FILE_EXTENSIONS = (".pdf", ".doc", ".docx", ".xls", ".xlsx", ".jpg", ".jpeg", ".png", ".txt", ".zip", ".csv", ".eml")
DOCUMENT_TYPES = (
    "DebtorDocuments",
    "CreditorDocuments",
    "PartnerDocuments",
    "OriginalInvoice",
    "DemandLetter",
    "Miscellaneous",
)
PRICE_CHANGE_THRESHOLD = 0.1
MAX_REFERENCES = 100


def _collected(sb: Sandbox, caller: Partner) -> list[CaseRecord]:
    """Production cases the caller collects and can see (the partner-reference lookups' scope)."""
    return [
        c
        for c in sb.store.cases.values()
        if not c.is_test and c.collection_partner_id == caller.id and visible_to_partner(c, caller)
    ]


@router.get("")
async def list_cases(sb: SandboxDep, caller: Caller, query: CaseQueryDep) -> dict[str, Any]:
    candidates = (
        c
        for c in sb.store.cases.values()
        if visible_to_partner(c, caller) and (query.include_test_cases or not c.is_test)
    )
    return views.case_list(sb, query, candidates)


@router.get("/by-partner-reference/{reference}")
async def get_case_by_partner_reference(
    sb: SandboxDep, caller: Caller, reference: Annotated[str, Path(alias="reference")]
) -> dict[str, Any]:
    for case in _collected(sb, caller):
        if case.collection_partner_reference == reference:
            return views.case(sb, case)
    raise not_found(f"No case of yours has the partner reference {reference!r}.")


@router.get("/by-partner-reference")
async def get_cases_by_partner_references(
    sb: SandboxDep, caller: Caller, references: str | None = None
) -> dict[str, Any]:
    wanted = [r.strip() for r in (references or "").split(",") if r.strip()]
    if not wanted:
        raise invalid_field("references", "give a comma-separated list of partner references")
    if len(wanted) > MAX_REFERENCES:
        raise invalid_field("references", f"at most {MAX_REFERENCES} references per request")
    found = {c.collection_partner_reference: c for c in _collected(sb, caller) if c.collection_partner_reference}
    return {ref: views.case(sb, found[ref]) for ref in wanted if ref in found}


@router.get("/by-creditor-reference")
async def get_case_by_creditor_reference(
    sb: SandboxDep,
    caller: Caller,
    reference: str | None = None,
    creditor_id: Annotated[str | None, Query(alias="creditorId")] = None,
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    if not (reference and reference.strip()):
        errors["reference"] = ["is required"]
    creditor = parse_uuid(creditor_id or "")
    if creditor is None:
        errors["creditorId"] = ["is required and must be a UUID"]
    if errors:
        raise invalid_fields(errors)
    for case in _collected(sb, caller):
        if case.creditor_id == creditor and case.creditor_reference == reference:
            return views.case(sb, case)
    raise not_found(f"No case of yours has creditor reference {reference!r} for creditor {creditor_id}.")


add_case_reads(router, WORKED)


@router.post("/{id}/chats")
async def send_case_chat(
    sb: SandboxDep, caller: Caller, case_id: CaseId, body: Annotated[SendChatRequest, json_body(SendChatRequest)]
) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    user = lifecycle.resolve_user(caller, "userEmail", body.user_email, body.user_id)
    assert user is not None  # the request model requires userEmail or userId
    return views.chat(lifecycle.post_chat(sb, case, 0, user, body.message))


@router.post("/{id}/payments")
async def record_payment(
    sb: SandboxDep,
    caller: Caller,
    case_id: CaseId,
    body: Annotated[CreatePaymentRequest, json_body(CreatePaymentRequest)],
) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    recipient = body.payment_recipient
    commission = (
        body.commission_payment_status.value
        if (recipient is PaymentRecipient.CREDITOR and body.commission_payment_status)
        else "Paid"
    )
    split = None
    if body.payout_creditor is not None and body.payout_collection_partner is not None:
        split = (money.cents(body.payout_creditor), money.cents(body.payout_collection_partner))
    new = payments.NewPayment(
        date=body.date,
        amount=money.cents(body.payment_amount),
        recipient=recipient.value,
        commission_payment_status=commission,
        split=split,
    )
    user = caller.users[0]
    recorded = payments.record(sb, case, new, body.close_case, user, partner_actor(user))
    p = recorded.payment
    return views.created_payment(case, p, body.close_case, recorded.closed, recorded.warnings)


@router.put("/{id}/payments/{paymentId}")
async def update_payment(
    sb: SandboxDep,
    caller: Caller,
    case_id: CaseId,
    payment_id: PaymentId,
    body: Annotated[UpdatePaymentRequest, json_body(UpdatePaymentRequest)],
) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    payment = payments.update(sb, case, payments.find(case, payment_id), body, partner_actor(caller.users[0]))
    return views.payment(case, payment)


@router.delete("/{id}/payments/{paymentId}", status_code=204)
async def delete_payment(
    sb: SandboxDep, caller: Caller, case_id: CaseId, payment_id: PaymentId, reopen: ReopenFlag = False
) -> Response:
    case = worked_case(sb, caller, case_id)
    payments.delete(sb, case, payments.find(case, payment_id), reopen, partner_actor(caller.users[0]))
    return Response(status_code=204)


@router.post("/{id}/files")
async def upload_case_file(sb: SandboxDep, caller: Caller, case_id: CaseId, request: Request) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise api_error(415, "Upload the file as multipart/form-data with a File part.", error="Unsupported Media Type")
    try:
        form = await request.form()
    except Exception:  # python-multipart raises several types for a malformed body
        raise invalid_field("File", "the multipart body could not be read") from None
    fields = {key.casefold(): value for key, value in form.multi_items()}
    upload = fields.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise invalid_field("File", "a file is required")
    if not upload.filename.lower().endswith(FILE_EXTENSIONS):
        message = f"{upload.filename}: extension not allowed; use one of {' '.join(FILE_EXTENSIONS)}"
        raise api_error(
            415, message, error="Unsupported Media Type", business=[business_error("UnsupportedFileExtension", message)]
        )
    content = await upload.read()
    if len(content) > MAX_FILE_BYTES:
        message = "The file is larger than 25 MB."
        raise api_error(413, message, error="Payload Too Large", business=[business_error("FileTooLarge", message)])
    description = _text(fields.get("description"))
    if description is not None and len(description) > 500:
        raise invalid_field("Description", "must be at most 500 characters")
    document_type = _text(fields.get("documenttype")) or None
    if document_type is not None and document_type not in DOCUMENT_TYPES:
        raise invalid_field("DocumentType", f"must be one of {', '.join(DOCUMENT_TYPES)}")
    if case.lifecycle is Lifecycle.MERGED:
        raise api_error(409, "The case is Merged and cannot accept new files.", error="Conflict")
    record = FileRecord(
        id=sb.store.child_id(case),
        date_created=sb.now(),
        file_name=upload.filename,
        size=len(content),
        description=description,
        document_type=document_type,
    )
    case.files.append(record)
    sb.store.put_file(record.id, content)
    sb.record(
        case,
        "FileUploaded",
        "Document uploaded",
        f"{record.file_name} ({record.size} bytes)",
        partner_actor(caller.users[0]),
    )
    return views.file(sb, case, record)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@router.post("/{id}/notes")
async def add_case_note(
    sb: SandboxDep, caller: Caller, case_id: CaseId, body: Annotated[CreateNoteRequest, json_body(CreateNoteRequest)]
) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    if body.event_date is not None and body.event_date > sb.now() + timedelta(minutes=1):
        raise invalid_field("eventDate", "must not be in the future")
    user = caller.users[0]
    note = NoteRecord(
        id=sb.store.child_id(case),
        created_at=sb.now(),
        event_date=body.event_date,
        description=body.description,
        user=user,
    )
    case.notes.append(note)
    sb.record(case, "NoteAdded", "Note", body.description, partner_actor(user), when=body.event_date)
    return views.note(case, note)


@router.post("/{id}/close")
async def close_case(
    sb: SandboxDep, caller: Caller, case_id: CaseId, body: Annotated[CloseCaseRequest, json_body(CloseCaseRequest)]
) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    code = CloseCode.parse(body.close_code)
    user = caller.users[0]
    lifecycle.close(sb, case, code, body.comment, user, partner_actor(user))
    paid = money.total_paid(case)
    return views.wire(
        {
            "caseReference": case.reference,
            "closeCode": code.api_name,
            "closeCodeDescription": code.value,
            "comment": body.comment,
            "closedAt": case.date_finished,
            "closedBy": {"userId": user.number, "userName": user.name},
            "finalOutstandingAmount": money.remainder(case),
            "totalPayments": paid,
            "totalRecovered": paid,
        }
    )


@router.post("/{id}/start")
async def start_case(
    sb: SandboxDep, caller: Caller, case_id: CaseId, body: Annotated[StartCaseRequest, json_body(StartCaseRequest)]
) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    lifecycle.start(sb, case, caller, body)
    return views.wire(
        {
            "caseId": case.id,
            "caseReference": case.reference,
            "status": case.lifecycle.value,
            "activatedAt": case.date_collection_started,
            "collectionPartnerReference": case.collection_partner_reference,
        }
    )


@router.put("/{id}/fees", response_model=None)
async def update_case_fees(
    sb: SandboxDep, caller: Caller, case_id: CaseId, body: Annotated[UpdateFeesRequest, json_body(UpdateFeesRequest)]
) -> dict[str, Any] | JSONResponse:
    case = worked_case(sb, caller, case_id)
    lifecycle.require_open(case, "changing fees")
    gross = money.cents(body.gross_amount) if body.gross_amount is not None else case.gross_amount
    proposed = money.success_fee(gross)
    if abs(proposed - case.success_fee) > PRICE_CHANGE_THRESHOLD and not body.confirm_price_change:
        return JSONResponse(
            views.wire(
                {
                    "caseId": case.id,
                    "confirmationRequired": True,
                    "isIntentionalRate": False,
                    "currentSuccessFee": case.success_fee,
                    "proposedSuccessFee": proposed,
                    "warning": f"The success fee would change from {case.success_fee}% to {proposed}%.",
                    "message": "Resubmit with confirmPriceChange=true to re-price the case.",
                }
            ),
            status_code=409,
        )
    before = (case.gross_amount, money.total_fees(case))
    case.gross_amount = gross
    case.success_fee = proposed
    case.interest_fees = money.cents(body.interest_fees)
    case.reminder_fees = money.cents(body.reminder_fees)
    case.collection_fees = money.cents(body.collection_fees)
    sb.record(
        case,
        "FeesUpdated",
        "Fees updated",
        f"Principal {before[0]} \u2192 {case.gross_amount}; fees {before[1]} \u2192 {money.total_fees(case)} "
        f"{case.currency}.",
        partner_actor(caller.users[0]),
    )
    return views.wire(
        {
            "caseId": case.id,
            "grossAmount": case.gross_amount,
            "interestFees": case.interest_fees,
            "reminderFees": case.reminder_fees,
            "collectionFees": case.collection_fees,
            "totalAddedFees": money.total_fees(case),
            "recalculatedSuccessFee": case.success_fee if body.gross_amount is not None else None,
            "remainder": money.remainder(case),
        }
    )


@router.get("/{id}/exclusive-period")
async def get_exclusive_period(sb: SandboxDep, caller: Caller, case_id: CaseId) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    period = lifecycle.exclusive_period(case)
    if period is None or case.date_collection_started is None:
        raise not_found("The case has no collection period yet (it has not been started).")
    end, extensions = period
    now = sb.now()
    status = "Terminated" if not case.is_open else ("Expired" if now > end else "Active")
    return views.wire(
        {
            "engagementStartDate": case.date_collection_started,
            "currentEndDate": end,
            "daysRemaining": max(0, (end - now).days) if status == "Active" else 0,
            "status": status,
            "extensions": [{"type": "Payment", "eventDate": at, "newEndDate": new_end} for at, new_end in extensions],
        }
    )


@router.get("/{id}/validation")
async def get_case_validation(sb: SandboxDep, caller: Caller, case_id: CaseId) -> dict[str, Any]:
    case = worked_case(sb, caller, case_id)
    return views.wire(
        {
            "needsInfo": case.needs_info,
            "creditorRespondedAt": case.creditor_responded_at,
            "items": [
                {"resolutionArea": i.resolution_area, "description": i.description} for i in case.validation_items
            ],
        }
    )
