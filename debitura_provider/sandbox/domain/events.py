"""Webhook event payloads.

NOT DOCUMENTED BY DEBITURA: the shape of every ``data`` object built below is an assumption; no source
publishes them (API-NOTES §6.3). Only the envelope is documented.

The envelope is documented (API-NOTES §6.3: ``id, specVersion, event, timestamp, data, links``).
The ``data`` of each Collection Partner event is NOT published anywhere: the shapes are ASSUMPTIONS,
built from the fragments the docs mention (``oldLifecycle``/``newLifecycle`` on ``case.updated``, close
code and comment on ``case.closed``, ``classification: test`` on test events). They are defined once, by
the receiver-side models in :mod:`debitura_provider.api.webhooks`, and built here through those models.
``GET /webhooks/events`` returns each payload exactly as delivered.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from debitura_provider.api.models import Lifecycle, WebhookEventType
from debitura_provider.api.webhooks import (
    CaseAssignedData,
    CaseClosedData,
    CaseUpdatedData,
    ChatCreatedData,
    PaymentData,
)
from debitura_provider.sandbox.domain import money
from debitura_provider.sandbox.domain.state import CaseRecord, ChatRecord, PaymentRecord

EventData = dict[str, Any]


def _case(case: CaseRecord) -> dict[str, str]:
    return {
        "case_id": str(case.id),
        "reference": case.reference,
        "lifecycle": case.lifecycle.value,
        "classification": "test" if case.is_test else "production",
    }


def case_assigned(case: CaseRecord) -> EventData:
    return CaseAssignedData(**_case(case)).to_json_types()


def case_updated(case: CaseRecord, old: Lifecycle, new: Lifecycle) -> EventData:
    return CaseUpdatedData(**_case(case), old_lifecycle=old.value, new_lifecycle=new.value).to_json_types()


def case_closed(case: CaseRecord) -> EventData:
    code = case.close_label
    return CaseClosedData(**_case(case), close_code=code, close_comment=case.close_comment).to_json_types()


def payment(case: CaseRecord, record: PaymentRecord) -> EventData:
    return PaymentData(
        **_case(case),
        payment_id=str(record.id),
        amount=float(record.amount),
        currency=case.currency,
        date=record.date.isoformat(),
        remainder=float(money.remainder(case)),
    ).to_json_types()


def chat_created(case: CaseRecord, chat: ChatRecord) -> EventData:
    return ChatCreatedData(
        **_case(case), chat_id=str(chat.id), message=chat.message, role_label=chat.role_label
    ).to_json_types()


def current(case: CaseRecord, event: WebhookEventType) -> EventData | None:
    """The payload ``POST /test/webhooks/fire`` sends: built from the case as it is now; None if data is missing."""
    if event is WebhookEventType.CASE_ASSIGNED:
        return case_assigned(case)
    if event is WebhookEventType.CASE_UPDATED:
        return case_updated(case, case.lifecycle, case.lifecycle)
    if event is WebhookEventType.CASE_CLOSED:
        return case_closed(case)
    if event is WebhookEventType.PAYMENT_CREATED:
        live = sorted(case.live_payments, key=lambda p: p.date_created)
        return payment(case, live[-1]) if live else None
    if event is WebhookEventType.PAYMENT_DELETED:
        deleted = sorted((p for p in case.payments if p.deleted_at), key=lambda p: p.deleted_at or p.date_created)
        return payment(case, deleted[-1]) if deleted else None
    chats = sorted(case.chats, key=lambda c: c.date_created)
    return chat_created(case, chats[-1]) if chats else None


def envelope(event_id: UUID, event: str, timestamp: datetime, data: EventData, link: str) -> str:
    """The delivered body, serialised once: the signature covers exactly these bytes."""
    body = {
        "id": str(event_id),
        "specVersion": "1.0",
        "event": event,
        "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": data,
        "links": {"self": link},
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
