"""Records → API response bodies, through the client's own response models.

Serialising with the same models the client parses keeps both sides on one definition of the wire
format (camelCase, labels, nulls left out). Required fields of the spec are always filled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from debitura_provider.api import models as m
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


def case(sb: Sandbox, record: CaseRecord) -> Body:
    partner = sb.store.partners[record.collection_partner_id]
    left = money.outstanding(record)
    model = m.Case(
        id=record.id,
        date_created=record.date_created,
        date_updated=record.date_updated,
        reference=record.reference,
        creditor_reference=record.creditor_reference,
        creditor_comments=record.comments,
        claim_description=record.claim_description,
        gross_amount=float(record.gross_amount),
        remainder=float(money.remainder(record)),
        interest_fees=float(record.interest_fees),
        reminder_fees=float(record.reminder_fees),
        collection_fees=float(record.collection_fees),
        total_added_fees=float(money.total_fees(record)),
        currency=record.currency,
        is_test_case=record.is_test,
        lifecycle=record.lifecycle.value,
        due_date=midnight(record.due_date),
        date=midnight(record.date),
        date_finished=record.date_finished,
        date_collection_started=record.date_collection_started,
        close_code=record.close_code.value if record.close_code else None,
        current_engagement_phase=record.engagement_phase,
        claim_type="Unpaid Invoice",
        debtor=record.debtor,
        collection_partner={
            "name": partner.name,
            "office_email": partner.office_email,
            "office_phone": partner.office_phone,
            "public_site": partner.public_site,
            "survey_cadence_mode": 0,
        },
        creditor={"id": record.creditor_id, "company_name": record.creditor_name, "country": record.creditor_country},
        pre_legal_success_fee=float(record.success_fee),
        exclusive_period_end_date=lifecycle.exclusive_period_end(record),
        validation={"needs_info": record.needs_info},
        assigned_user={"email": record.assigned_user.email, "name": record.assigned_user.name}
        if record.assigned_user
        else None,
        allocation_outstanding={
            "principal": float(left.principal),
            "interest": float(left.interest),
            "reminder_fees": float(left.reminder_fees),
            "collection_fees": float(left.collection_fees),
        },
    )
    return model.to_wire()


def page(total: int, page_number: int, page_size: int, count: int) -> Body:
    return m.PageInfo(
        total_results=total,
        page_size=page_size,
        current_page=page_number,
        response_count=count,
        total_pages=math.ceil(total / page_size),
    ).to_wire()


def timeline(record: CaseRecord) -> Body:
    items = sorted(record.timeline, key=lambda e: (e.date, e.seq))
    return m.Timeline(
        items=[
            m.TimelineItem(
                date=e.date,
                type=e.type,
                title=e.title,
                description=e.description,
                actor={"type": e.actor.type, "name": e.actor.name},
            )
            for e in items
        ],
        current_engagement_phase=record.engagement_phase,
    ).to_wire()


def payment(record: CaseRecord, p: PaymentRecord) -> Body:
    return m.Payment(
        id=p.id,
        date_created=p.date_created,
        date_updated=p.date_updated,
        date=midnight(p.date),
        gross_amount=float(p.amount),
        recipient=p.recipient,
        method=p.method,
        currency=record.currency,
        invoice={"status": record.lifecycle.value, "reference": record.reference, "invoice_id": record.id},
    ).to_wire()


def payments(record: CaseRecord) -> list[Body]:
    """Newest first, as the spec says."""
    newest = sorted(record.live_payments, key=lambda p: (p.date, p.date_created), reverse=True)
    return [payment(record, p) for p in newest]


def _user(user: User) -> Body:
    first, _, last = user.name.partition(" ")
    return {"id": user.number, "first_name": first, "last_name": last, "email": user.email}


def chat(c: ChatRecord) -> Body:
    return m.ChatMessage(
        id=c.id,
        date_created=c.date_created,
        role=c.role,
        role_label=c.role_label,
        message=c.message,
        is_seen=False,
        user=_user(c.user),
    ).to_wire()


def chats(record: CaseRecord) -> list[Body]:
    return [chat(c) for c in sorted(record.chats, key=lambda c: c.date_created)]


def file(sb: Sandbox, record: CaseRecord, f: FileRecord) -> Body:
    return m.CaseFile(
        id=f.id,
        date_created=f.date_created,
        date_updated=f.date_created,
        case_id=record.id,
        entity_type="Case",
        entity_id=record.id,
        file_name=f.file_name,
        url=file_url(sb, f),
        description=f.description,
        document_type=f.document_type,
    ).to_wire()


def file_url(sb: Sandbox, f: FileRecord) -> str:
    """A download link shaped like the real signed one (``se`` = expiry, an hour from now)."""
    expiry = sb.now().replace(microsecond=0) + timedelta(hours=1)
    return f"{sb.base_url}/portal/files/{f.id}?se={expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}&sp=r"


def note(record: CaseRecord, n: NoteRecord) -> Body:
    return m.Note(
        id=n.id,
        case_reference=record.reference,
        title="Note",
        description=n.description,
        visibility="Shared with creditor",
        created_at=n.created_at,
        event_date=n.event_date,
        created_by={"user_id": n.user.number, "user_name": n.user.name},
    ).to_wire()


def me(p: Partner) -> Body:
    return m.Me(
        id=p.id,
        company_name=p.name,
        company_registration_number=f"{p.country}{p.id.int % 10**8:08d}",
        vat_number=None,
        country=p.country,
        office_email=p.office_email,
        office_phone=p.office_phone,
        invoice_email=p.office_email,
        billing_contact=p.users[0].name if p.users else None,
        commission_type=0,
        pre_legal_revenue_share=0.40,
        legal_revenue_share=0.20,
        verified_profile=True,
        full_address=p.country,
        survey_cadence_mode=0,
    ).to_wire()


def subscription(s: Subscription, *, with_secret: bool = False) -> Body:
    body = m.WebhookSubscription(
        id=s.id,
        url=s.url,
        events=s.events,
        is_active=s.is_active,
        created_utc=s.created_utc,
        updated_utc=s.updated_utc,
        disabled_reason=s.disabled_reason,
        is_test_mode=s.is_test_mode,
    ).to_wire()
    if with_secret:
        body["secret"] = s.secret  # the model masks secrets; this is the one place it is shown
    return body


def event(e: EventRecord) -> Body:
    return m.WebhookEventRecord(
        id=e.id,
        subscription_id=e.subscription_id,
        case_id=e.case_id,
        event_type=e.event_type,
        payload=e.payload,
        created_at=e.created_at,
        delivered_at=e.delivered_at,
        attempt_count=e.attempt_count,
        last_response_code=e.last_response_code,
        last_error=e.last_error,
    ).to_wire()


def case_list(sb: Sandbox, query: CaseQuery, candidates: Iterable[CaseRecord]) -> Body:
    """An ``InvoiceListDto``: the filtered, sorted page and its ``page`` block."""
    matching = query.ordered([c for c in candidates if query.matches(c)])
    shown = query.window(matching)
    return {"page": page(len(matching), query.page, query.page_size, len(shown)), "cases": [case(sb, c) for c in shown]}
