"""Debitura payments, as they happen: notify the agency in its CRM and bring the referral ledger up to date.

Scheduled on the ``debitura_payments`` asset, which the webhook receiver in Airflow's API server
updates for every ``payment.created`` and ``payment.deleted`` Debitura delivers (docs/webhooks.md):
no sensor polls while nobody pays. A run handles the asset events that triggered it; a run started
by hand (or by ``airflow dags test``) handles the latest ``recent`` payment events again.

For each event, one row in the CRM's ``payment_notifications`` table: that row is the agency's
notification, joined to the CRM invoice and client when the case came from ``debitura_referral``.
Rows are keyed by payment and event type (by event id when a payload names no payment), so a
redelivery, a replay or a re-run adds nothing. Then the ``referral_ledger`` row of each paid case
(if the referral DAG made one) is refreshed from the case and its payments as Debitura returns
them (two requests per case): the same figures the referral DAG writes, so the two DAGs never count
a payment twice, whatever order events arrive in.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from agency_crm import CRM_CONN_ID
from agency_crm.db import ensure_schema, rows, transaction
from agency_crm.ledger import now_iso, stored
from airflow.sdk import Param, dag, task
from sqlalchemy import Connection, text

from debitura_provider.api.models import Case, Payment
from debitura_provider.api.webhooks import PaymentData, WebhookEvent
from debitura_provider.assets import DEBITURA_PAYMENTS
from debitura_provider.hooks.debitura import DebituraHook

NOTIFICATIONS_TABLE = """CREATE TABLE IF NOT EXISTS payment_notifications (
    notification_key VARCHAR(100) PRIMARY KEY,
    event_id VARCHAR(64) NOT NULL,
    event_type VARCHAR(32) NOT NULL,
    case_id VARCHAR(40) NOT NULL,
    case_reference VARCHAR(40),
    record_key VARCHAR(64),
    client_id VARCHAR(32),
    payment_id VARCHAR(40),
    amount NUMERIC(14, 2),
    currency VARCHAR(8),
    payment_date VARCHAR(40),
    remainder NUMERIC(14, 2),
    occurred_at VARCHAR(40) NOT NULL,
    notified_at VARCHAR(40) NOT NULL
)"""
"""The agency's inbox of payments: one row per payment created or deleted at Debitura."""

_INSERT_NOTIFICATION = text(
    "INSERT INTO payment_notifications (notification_key, event_id, event_type, case_id, case_reference, "
    "record_key, client_id, payment_id, amount, currency, payment_date, remainder, occurred_at, notified_at) "
    "VALUES (:notification_key, :event_id, :event_type, :case_id, :case_reference, :record_key, :client_id, "
    ":payment_id, :amount, :currency, :payment_date, :remainder, :occurred_at, :notified_at) "
    "ON CONFLICT (notification_key) DO NOTHING"
)

_CRM_KEYS = """
SELECT l.record_key, i.client_id FROM referral_ledger l LEFT JOIN invoices i ON i.invoice_id = l.record_key
WHERE l.case_id = :case_id
"""


def notification(event: WebhookEvent, crm: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``payment_notifications`` row of one payment event; ``None`` for another event or no case."""
    data = event.typed_data()
    if not isinstance(data, PaymentData) or not data.case_id:
        return None
    return {
        "notification_key": f"{data.payment_id}:{event.event}" if data.payment_id else f"event:{event.id}",
        "event_id": str(event.id),
        "event_type": event.event,
        "case_id": data.case_id,
        "case_reference": data.reference,
        "record_key": (crm or {}).get("record_key"),
        "client_id": (crm or {}).get("client_id"),
        "payment_id": data.payment_id,
        "amount": stored(data.amount),
        "currency": data.currency,
        "payment_date": data.date,
        "remainder": stored(data.remainder),
        "occurred_at": event.timestamp.isoformat(),
        "notified_at": now_iso(),
    }


def record_notifications(connection: Connection, envelopes: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """Insert the notifications not yet recorded; returns how many were new, and the paid cases
    that have a ledger row (the cases the referral DAG referred)."""
    connection.execute(text(NOTIFICATIONS_TABLE))
    new, in_ledger = 0, []
    for envelope in envelopes:
        event = WebhookEvent.model_validate(envelope)
        crm = next(iter(rows(connection, _CRM_KEYS, case_id=event.case_id)), None)
        row = notification(event, crm)
        if row is None:
            continue
        new += connection.execute(_INSERT_NOTIFICATION, row).rowcount
        if crm is not None:
            in_ledger.append(row["case_id"])
    return new, list(dict.fromkeys(in_ledger))


def refresh_ledger(connection: Connection, case: Case, payments: list[Payment]) -> int:
    """Bring the case's ledger row up to date from Debitura's figures; returns the rows changed."""
    case_id = str(case.id)
    [latest] = rows(
        connection,
        "SELECT event_type, amount, currency, occurred_at FROM payment_notifications "
        "WHERE case_id = :case_id ORDER BY occurred_at DESC, notified_at DESC LIMIT 1",
        case_id=case_id,
    )
    summary = f"{latest['occurred_at'][:10]} {latest['event_type']}: {latest['amount']} {latest['currency'] or ''}"
    return connection.execute(
        text(
            "UPDATE referral_ledger SET amount_collected = :collected, last_payment_date = :last_payment, "
            "remainder = :remainder, lifecycle = :lifecycle, close_code = :close_code, last_event = :summary, "
            "updated_at = :at WHERE case_id = :case_id"
        ),
        {
            "collected": stored(sum((p.gross_amount for p in payments), Decimal(0))),
            "last_payment": max((p.date.date().isoformat() for p in payments if p.date), default=None),
            "remainder": stored(case.remainder),
            "lifecycle": case.lifecycle,
            "close_code": case.close_code,
            "summary": summary.strip()[:400],
            "at": now_iso(),
            "case_id": case_id,
        },
    ).rowcount


# --8<-- [start:payments_dag]
@dag(
    dag_id="debitura_payment_notifications",
    schedule=[DEBITURA_PAYMENTS],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["debitura", "example", "webhooks"],
    params={
        "recent": Param(100, type="integer", minimum=1, description="Runs by hand: handle this many latest events."),
    },
    default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=10)},
    doc_md=__doc__,
)
def debitura_payment_notifications() -> None:
    @task(inlets=[DEBITURA_PAYMENTS])
    def apply_payments(params: dict[str, Any], triggering_asset_events: Any, inlet_events: Any) -> dict[str, int]:
        """Notify the agency of each payment event and refresh the ledger of the paid cases."""
        events = triggering_asset_events[DEBITURA_PAYMENTS] if triggering_asset_events else []
        if not events:
            events = list(inlet_events[DEBITURA_PAYMENTS].ascending(False).limit(int(params["recent"])))
        envelopes = sorted((e.extra for e in events if e.extra), key=lambda env: str(env.get("timestamp")))
        with transaction(CRM_CONN_ID) as connection:
            ensure_schema(connection)
            new, case_ids = record_notifications(connection, envelopes)
        hook, updated = DebituraHook(), 0
        for case_id in case_ids:
            client = hook.get_client()
            case, payments = client.get_managed_case(case_id), client.get_managed_case_payments(case_id)
            with transaction(CRM_CONN_ID) as connection:
                updated += refresh_ledger(connection, case, payments)
        print(f"{len(envelopes)} payment events: {new} new notifications, {updated} ledger rows refreshed.")
        return {"events": len(envelopes), "new_notifications": new, "ledger_rows_refreshed": updated}

    apply_payments()
# --8<-- [end:payments_dag]


debitura_payment_notifications()
