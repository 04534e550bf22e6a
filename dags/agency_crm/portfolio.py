"""Following referred cases in the CRM: payment notifications, the ledger's case columns, and flags.

Everything here is keyed so that it is right whatever order events arrive in and however often:

- ``payment_notifications``: one row per payment and event type (``payment.created``,
  ``payment.deleted``, or ``payment.edited`` with the new amount), whichever source delivered it
  (webhook or portfolio scan) and however many times;
- the ledger's case columns (lifecycle, close code, remainder, collected, last payment) are copied
  from the case as Debitura returns it when the run reads it, never added up from events;
- ``case_flags``: one row per case that needs the agency (*More Info Required*, *Paused*, closed
  without payment), raised while the case is in that state and cleared when it leaves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection  # not in sqlalchemy's top level before 2.0 (Airflow 3.0 has 1.4)

from agency_crm.db import rows
from agency_crm.ledger import money, now_iso, stored
from debitura_provider.api.models import Case, Lifecycle, Payment
from debitura_provider.api.money import to_minor

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
"""The agency's inbox of payments: one row per payment created, edited or deleted at Debitura."""

FLAGS_TABLE = """CREATE TABLE IF NOT EXISTS case_flags (
    case_id VARCHAR(40) PRIMARY KEY,
    record_key VARCHAR(64),
    client_id VARCHAR(32),
    case_reference VARCHAR(40),
    flag VARCHAR(32) NOT NULL,
    lifecycle VARCHAR(64),
    close_code VARCHAR(64),
    raised_at VARCHAR(40) NOT NULL,
    cleared_at VARCHAR(40)
)"""
"""Cases that need the agency; ``cleared_at`` is set once the case no longer needs it."""

FLAGS = {
    Lifecycle.NEEDS_ADDITIONAL_DETAILS: "more_info_required",
    Lifecycle.PAUSED: "paused",
}
CLOSED_WITHOUT_PAYMENT = "closed_without_payment"

_INSERT_NOTIFICATION = text(
    "INSERT INTO payment_notifications (notification_key, event_id, event_type, case_id, case_reference, "
    "record_key, client_id, payment_id, amount, currency, payment_date, remainder, occurred_at, notified_at) "
    "VALUES (:notification_key, :event_id, :event_type, :case_id, :case_reference, :record_key, :client_id, "
    ":payment_id, :amount, :currency, :payment_date, :remainder, :occurred_at, :notified_at) "
    "ON CONFLICT (notification_key) DO NOTHING"
)

_CRM_KEYS = """
SELECT l.case_id, l.record_key, i.client_id FROM referral_ledger l LEFT JOIN invoices i ON i.invoice_id = l.record_key
WHERE l.case_id IN :case_ids
"""


def ensure_tables(connection: Connection) -> None:
    connection.execute(text(NOTIFICATIONS_TABLE))
    connection.execute(text(FLAGS_TABLE))


def referred(connection: Connection, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The CRM record and client of each case the referral DAG made (cases in the ledger)."""
    ids = list(dict.fromkeys(case_ids))
    if not ids:
        return {}
    statement = text(_CRM_KEYS).bindparams(bindparam("case_ids", expanding=True))
    return {row["case_id"]: dict(row) for row in connection.execute(statement, {"case_ids": ids}).mappings()}


def ledger_cases(connection: Connection) -> dict[str, dict[str, Any]]:
    """Every case of the ledger with its recorded collected amount: what a run started by hand reconciles."""
    found = rows(
        connection,
        "SELECT case_id, amount_collected, last_payment_date FROM referral_ledger WHERE case_id IS NOT NULL",
    )
    return {row["case_id"]: row for row in found}


def money_moved(case: Case, row: dict[str, Any] | None) -> bool:
    """Whether the case's payments changed since its ledger row was written (so they must be read)."""
    paid = to_minor(case.paid_off, case.currency)
    if row is None:
        return paid > 0
    recorded = money(row.get("amount_collected"))
    if recorded is None or to_minor(recorded, case.currency) != paid:
        return True
    return paid > 0 and not row.get("last_payment_date")


def notification(event: dict[str, Any], crm: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``payment_notifications`` row of one normalised payment event; ``None`` for other events."""
    data = event["data"]
    if not event["type"].startswith("payment.") or not data.get("caseId"):
        return None
    kind, payment_id = event["type"], data.get("paymentId")
    if data.get("previousAmount") is not None:
        kind = "payment.edited"
    key = f"{payment_id}:{kind}" if payment_id else f"event:{event['id']}"
    if kind == "payment.edited":
        key += f":{data.get('amount')}"
    return {
        "notification_key": key[:100],
        "event_id": event["id"],
        "event_type": kind,
        "case_id": data["caseId"],
        "case_reference": data.get("reference"),
        "record_key": (crm or {}).get("record_key"),
        "client_id": (crm or {}).get("client_id"),
        "payment_id": payment_id,
        "amount": stored(data.get("amount")),
        "currency": data.get("currency"),
        "payment_date": data.get("date"),
        "remainder": stored(data.get("remainder")),
        "occurred_at": str(event.get("createdAt") or ""),
        "notified_at": now_iso(),
    }


def record_notifications(connection: Connection, events: list[dict[str, Any]]) -> int:
    """Insert the notifications not yet recorded (of referred cases and others); returns how many were new."""
    crm = referred(connection, (e["data"].get("caseId") for e in events))
    new = 0
    for event in events:
        row = notification(event, crm.get(event["data"].get("caseId")))
        if row is not None:
            new += connection.execute(_INSERT_NOTIFICATION, row).rowcount
    return new


def refresh_ledger(connection: Connection, case: Case, payments: list[Payment] | None) -> int:
    """Copy the case's current figures into its ledger row; returns the rows changed.

    ``payments`` None keeps the row's last payment date (no payment moved since it was written).
    """
    values: dict[str, Any] = {
        "collected": stored(case.paid_off),
        "remainder": stored(case.remainder),
        "lifecycle": case.lifecycle,
        "close_code": case.close_code,
        "summary": _summary(connection, case),
        "at": now_iso(),
        "case_id": str(case.id),
    }
    assignments = (
        "amount_collected = :collected, remainder = :remainder, lifecycle = :lifecycle, "
        "close_code = :close_code, last_event = :summary, updated_at = :at"
    )
    if payments is not None:
        values["last_payment"] = max((p.date.date().isoformat() for p in payments if p.date), default=None)
        assignments += ", last_payment_date = :last_payment"
    statement = text(f"UPDATE referral_ledger SET {assignments} WHERE case_id = :case_id")
    return connection.execute(statement, values).rowcount


def _summary(connection: Connection, case: Case) -> str:
    """The ledger's ``last_event``: the case's latest payment notification, else its lifecycle."""
    latest = rows(
        connection,
        "SELECT event_type, amount, currency, occurred_at FROM payment_notifications "
        "WHERE case_id = :case_id ORDER BY occurred_at DESC, notified_at DESC LIMIT 1",
        case_id=str(case.id),
    )
    if latest:
        note = latest[0]
        line = f"{note['occurred_at'][:10]} {note['event_type']}: {note['amount']} {note['currency'] or ''}"
        return line.strip()[:400]
    when = case.date_updated or case.date_created
    stamp = when.date().isoformat() if when else ""
    close = f" ({case.close_code})" if case.close_code else ""
    return f"{stamp} {case.lifecycle or 'unknown'}{close}".strip()[:400]


def flag_of(case: Case) -> str | None:
    """Why the case needs the agency, or None."""
    state = case.lifecycle_state
    if state is Lifecycle.CLOSED and to_minor(case.paid_off, case.currency) == 0:
        return CLOSED_WITHOUT_PAYMENT
    return FLAGS.get(state) if state is not None else None


def update_flags(connection: Connection, cases: list[Case], crm: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Raise or clear each case's flag from its current state; returns ``{"raised", "cleared"}``."""
    at, raised, cleared = now_iso(), 0, 0
    for case in cases:
        case_id, flag = str(case.id), flag_of(case)
        current = rows(connection, "SELECT flag, cleared_at FROM case_flags WHERE case_id = :c", c=case_id)
        if flag is None:
            if current and current[0]["cleared_at"] is None:
                connection.execute(
                    text("UPDATE case_flags SET cleared_at = :at, lifecycle = :l, close_code = :cc WHERE case_id = :c"),
                    {"at": at, "l": case.lifecycle, "cc": case.close_code, "c": case_id},
                )
                cleared += 1
            continue
        if current and current[0]["flag"] == flag and current[0]["cleared_at"] is None:
            continue
        keys = crm.get(case_id) or {}
        connection.execute(text("DELETE FROM case_flags WHERE case_id = :c"), {"c": case_id})
        connection.execute(
            text(
                "INSERT INTO case_flags (case_id, record_key, client_id, case_reference, flag, lifecycle, close_code, "
                "raised_at) VALUES (:c, :rk, :client, :ref, :flag, :l, :cc, :at)"
            ),
            {
                "c": case_id,
                "rk": keys.get("record_key"),
                "client": keys.get("client_id"),
                "ref": case.reference,
                "flag": flag,
                "l": case.lifecycle,
                "cc": case.close_code,
                "at": at,
            },
        )
        raised += 1
    return {"raised": raised, "cleared": cleared}
