"""Records → API response bodies, in the sandbox's own representation.

Each body is written out here with the spec's wire names (the schemas under ``components`` of
Debitura's OpenAPI spec), not through the client's response models: a wire-name mistake in a client
model then shows up as a client that cannot read a correct answer, instead of passing unseen because
both sides share it. The strict oracle checks every body against the spec. Nulls are left out, dates
are ISO 8601 in UTC, amounts are JSON numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from debitura_provider.sandbox.domain import lifecycle, money
from debitura_provider.sandbox.domain.clock import midnight
from debitura_provider.sandbox.domain.queries import CaseQuery
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.state import (
    CaseRecord,
    ChatRecord,
    EventRecord,
    FileRecord,
    NoteRecord,
    Partner,
    PaymentRecord,
    Subscription,
    User,
)

Body = dict[str, Any]


def _value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return wire(value)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)  # a JSON number; cents have a short exact decimal form
    return value


def wire(fields: Mapping[str, Any]) -> Body:
    """A JSON-ready body: nulls left out, values in their JSON form."""
    return {key: _value(value) for key, value in fields.items() if value is not None}


def case(sb: Sandbox, record: CaseRecord) -> Body:
    """An ``InvoiceDto``."""
    partner = sb.store.partners[record.collection_partner_id]
    left = money.outstanding(record)
    assigned = record.assigned_user
    return wire(
        {
            "id": record.id,
            "dateCreated": record.date_created,
            "dateUpdated": record.date_updated,
            "reference": record.reference,
            "creditorReference": record.creditor_reference,
            "creditorComments": record.comments,
            "claimDescription": record.claim_description,
            "grossAmount": record.gross_amount,
            "remainder": money.remainder(record),
            "interestFees": record.interest_fees,
            "reminderFees": record.reminder_fees,
            "collectionFees": record.collection_fees,
            "totalAddedFees": money.total_fees(record),
            "currency": record.currency,
            "isTestCase": record.is_test,
            "lifecycle": record.lifecycle.value,
            "dueDate": midnight(record.due_date),
            "date": midnight(record.date),
            "dateFinished": record.date_finished,
            "dateCollectionStarted": record.date_collection_started,
            "closeCode": record.close_label,
            "currentEngagementPhase": record.engagement_phase,
            "claimType": "Unpaid Invoice",
            "debtor": record.debtor,
            "collectionPartner": {
                "name": partner.name,
                "officeEmail": partner.office_email,
                "officePhone": partner.office_phone,
                "publicSite": partner.public_site,
                "surveyCadenceMode": 0,
            },
            "creditor": {
                "id": record.creditor_id,
                "companyName": record.creditor_name,
                "country": record.creditor_country,
            },
            "preLegalSuccessFee": record.success_fee,
            "exclusivePeriodEndDate": lifecycle.exclusive_period_end(record),
            "validation": {"needsInfo": record.needs_info},
            "assignedUser": {"email": assigned.email, "name": assigned.name} if assigned else None,
            "allocationOutstanding": {
                "principal": left.principal,
                "interest": left.interest,
                "reminderFees": left.reminder_fees,
                "collectionFees": left.collection_fees,
            },
        }
    )


def page(total: int, page_number: int, page_size: int, count: int) -> Body:
    """A ``PageData``."""
    return wire(
        {
            "totalResults": total,
            "pageSize": page_size,
            "currentPage": page_number,
            "responseCount": count,
            "totalPages": math.ceil(total / page_size),
        }
    )


def timeline(record: CaseRecord) -> Body:
    """A ``CaseTimelineResponse``, oldest first."""
    items = sorted(record.timeline, key=lambda e: (e.date, e.seq))
    return wire(
        {
            "items": [
                {
                    "date": e.date,
                    "type": e.type,
                    "title": e.title,
                    "description": e.description,
                    "actor": {"type": e.actor.type, "name": e.actor.name},
                }
                for e in items
            ],
            "currentEngagementPhase": record.engagement_phase,
        }
    )


def payment(record: CaseRecord, p: PaymentRecord) -> Body:
    """A ``PaymentDto``."""
    return wire(
        {
            "id": p.id,
            "dateCreated": p.date_created,
            "dateUpdated": p.date_updated,
            "date": midnight(p.date),
            "grossAmount": p.amount,
            "recipient": p.recipient,
            "method": p.method,
            "currency": record.currency,
            "invoice": {"status": record.lifecycle.value, "reference": record.reference, "invoiceId": record.id},
        }
    )


def payments(record: CaseRecord) -> list[Body]:
    """Newest first, as the spec says."""
    newest = sorted(record.live_payments, key=lambda p: (p.date, p.date_created), reverse=True)
    return [payment(record, p) for p in newest]


def created_payment(record: CaseRecord, p: PaymentRecord, close_case: bool, closed: bool, warnings: list[str]) -> Body:
    """A ``CreatePaymentResponse`` (``POST /cases/{id}/payments``)."""
    return wire(
        {
            "paymentId": p.id,
            "caseReference": record.reference,
            "date": midnight(p.date),
            "paymentAmount": p.amount,
            "payoutCreditor": p.payout_creditor,
            "payoutCollectionPartner": p.payout_collection_partner,
            "paymentRecipient": p.recipient,
            "commissionPaymentStatus": p.commission_payment_status,
            "closeCase": close_case,
            "caseClosed": closed,
            "closeCode": record.close_code.value if closed and record.close_code else None,
            "remainingAmount": money.remainder(record),
            "warnings": warnings,
        }
    )


def created_test_payment(record: CaseRecord, p: PaymentRecord, closed: bool) -> Body:
    """A ``CreateManagedCasePaymentResponse`` (``POST /managed-cases/{id}/payments``)."""
    return wire(
        {
            "paymentId": p.id,
            "caseReference": record.reference,
            "date": midnight(p.date),
            "paymentAmount": p.amount,
            "caseClosed": closed,
            "remainingAmount": money.remainder(record),
        }
    )


def _user(user: User) -> Body:
    first, _, last = user.name.partition(" ")
    return {"id": user.number, "firstName": first, "lastName": last, "email": user.email}


def chat(c: ChatRecord) -> Body:
    """A ``ChatDto``."""
    return wire(
        {
            "id": c.id,
            "dateCreated": c.date_created,
            "role": c.role,
            "roleLabel": c.role_label,
            "message": c.message,
            "isSeen": False,
            "user": _user(c.user),
        }
    )


def chats(record: CaseRecord) -> list[Body]:
    return [chat(c) for c in sorted(record.chats, key=lambda c: c.date_created)]


def file(sb: Sandbox, record: CaseRecord, f: FileRecord) -> Body:
    """A ``CaseFileDto``."""
    return wire(
        {
            "id": f.id,
            "dateCreated": f.date_created,
            "dateUpdated": f.date_created,
            "caseId": record.id,
            "entityType": "Case",
            "entityId": record.id,
            "fileName": f.file_name,
            "url": file_url(sb, f),
            "description": f.description,
            "documentType": f.document_type,
        }
    )


def file_url(sb: Sandbox, f: FileRecord) -> str:
    """A download link shaped like the real signed one (``se`` = expiry, an hour of real time from now)."""
    expiry = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    return f"{sb.base_url}/portal/files/{f.id}?se={expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}&sp=r"


def note(record: CaseRecord, n: NoteRecord) -> Body:
    """A ``NoteDto``."""
    return wire(
        {
            "id": n.id,
            "caseReference": record.reference,
            "title": "Note",
            "description": n.description,
            "visibility": "Shared with creditor",
            "createdAt": n.created_at,
            "eventDate": n.event_date,
            "createdBy": {"userId": n.user.number, "userName": n.user.name},
        }
    )


def me(p: Partner) -> Body:
    """A ``CollectionPartnerMeResponse``."""
    return wire(
        {
            "id": p.id,
            "companyName": p.name,
            "companyRegistrationNumber": f"{p.country}{p.id.int % 10**8:08d}",
            "country": p.country,
            "officeEmail": p.office_email,
            "officePhone": p.office_phone,
            "invoiceEmail": p.office_email,
            "billingContact": p.users[0].name if p.users else None,
            "commissionType": 0,
            "preLegalRevenueShare": 0.40,
            "legalRevenueShare": 0.20,
            "verifiedProfile": True,
            "fullAddress": p.country,
            "surveyCadenceMode": 0,
        }
    )


def users(caller: Partner, paging: CaseQuery) -> Body:
    """A ``UserListDto``: one page of the partner's portal users."""
    start = (paging.page - 1) * paging.page_size
    shown = caller.users[start : start + paging.page_size]
    return wire(
        {
            "page": page(len(caller.users), paging.page, paging.page_size, len(shown)),
            "users": [{"id": u.id, "name": u.name, "email": u.email} for u in shown],
        }
    )


def subscription(s: Subscription, *, with_secret: bool = False) -> Body:
    """A ``WebhookDto``; the secret only in the answers to create and to ``regenerateSecret``."""
    return wire(
        {
            "id": s.id,
            "url": s.url,
            "events": s.events,
            "isActive": s.is_active,
            "createdUtc": s.created_utc,
            "updatedUtc": s.updated_utc,
            "disabledReason": s.disabled_reason,
            "secret": s.secret if with_secret else None,
            "isTestMode": s.is_test_mode,
        }
    )


def event(e: EventRecord) -> Body:
    """A ``WebhookEventDto``: the payload exactly as delivered."""
    return wire(
        {
            "id": e.id,
            "subscriptionId": e.subscription_id,
            "caseId": e.case_id,
            "eventType": e.event_type,
            "payload": e.payload,
            "createdAt": e.created_at,
            "deliveredAt": e.delivered_at,
            "attemptCount": e.attempt_count,
            "lastResponseCode": e.last_response_code,
            "lastError": e.last_error,
        }
    )


def replayed(row: EventRecord) -> Body:
    """A ``ReplayEventResultDto`` / ``ReplayLastEventResponse``."""
    return wire({"eventId": row.id, "subscriptionId": row.subscription_id, "eventType": row.event_type})


def case_list(sb: Sandbox, query: CaseQuery, candidates: Iterable[CaseRecord]) -> Body:
    """An ``InvoiceListDto``: the filtered, sorted page and its ``page`` block."""
    matching = query.ordered([c for c in candidates if query.matches(c)])
    shown = query.window(matching)
    return {"page": page(len(matching), query.page, query.page_size, len(shown)), "cases": [case(sb, c) for c in shown]}
