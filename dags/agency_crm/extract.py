"""Which invoices go to Debitura, in the shape Debitura takes them, kept as numbered batches.

An invoice is referred when it is open, overdue by at least ``min_days_overdue`` days, its debtor
lives outside the countries the agency collects in itself (``agency_coverage``), and it has not
been referred yet (no ``created``/``existing`` row in ``referral_ledger``). Rejected invoices come
back in the next extract, so a fix in the CRM gets them referred.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection  # not in sqlalchemy's top level before 2.0 (Airflow 3.0 has 1.4)

from agency_crm.db import rows

RECORD_KEY = "record_id"
"""Field of each record holding its CRM key (the invoice id); not part of Debitura's request body."""

REFERRED = ("created", "existing")

_OVERDUE_INVOICES = """
SELECT i.invoice_id, i.invoice_number, i.currency, i.amount_due, i.issue_date, i.due_date,
       i.description, i.collection_notes,
       c.company_name AS client_name, c.country_alpha2 AS client_country,
       d.debtor_type, d.name AS debtor_name, d.contact_person, d.registration_number, d.address,
       d.zip_code, d.city, d.state_code, d.country_alpha2 AS debtor_country, d.email, d.phone
FROM invoices i
JOIN clients c ON c.client_id = i.client_id
JOIN debtors d ON d.debtor_id = i.debtor_id
WHERE i.status = 'open'
  AND i.due_date <= :cutoff
  AND COALESCE(d.country_alpha2, '') NOT IN (SELECT country_alpha2 FROM agency_coverage)
  AND NOT EXISTS (
      SELECT 1 FROM referral_ledger l
      WHERE l.record_key = i.invoice_id AND l.status IN ('created', 'existing'))
ORDER BY i.invoice_id
"""


def overdue_invoices(connection: Connection, today: dt.date, min_days_overdue: int) -> list[dict[str, Any]]:
    """The invoices to refer today, as create-managed-case records (see :func:`to_record`)."""
    cutoff = (today - dt.timedelta(days=min_days_overdue)).isoformat()
    return [to_record(row) for row in rows(connection, _OVERDUE_INVOICES, cutoff=cutoff)]


def to_record(row: dict[str, Any]) -> dict[str, Any]:
    """A CRM invoice row as a ``CreateManagedCaseRequest`` body plus its record key.

    Values are passed on as the CRM holds them (empty ones left out): checking them is the
    referral DAG's first step, which records why a row cannot be referred.
    """
    debtor = {
        "type": row["debtor_type"],
        "name": row["debtor_name"],
        "contactPerson": row["contact_person"],
        "companyRegistrationNumber": row["registration_number"],
        "address": row["address"],
        "zipCode": row["zip_code"],
        "city": row["city"],
        "stateAlpha2": row["state_code"],
        "countryAlpha2": row["debtor_country"],
        "email": row["email"],
        "phone": row["phone"],
    }
    record = {
        RECORD_KEY: row["invoice_id"],
        "creditorCompanyName": row["client_name"],
        "creditorCountryAlpha2": row["client_country"],
        "currencyCode": row["currency"],
        "amountToRecover": None if row["amount_due"] is None else float(row["amount_due"]),
        "date": _iso_date(row["issue_date"]),
        "dueDate": _iso_date(row["due_date"]),
        "creditorReference": row["invoice_number"],
        "claimDescription": row["description"],
        "comments": row["collection_notes"],
        "debtor": {key: value for key, value in debtor.items() if value is not None},
    }
    return {key: value for key, value in record.items() if value is not None}


def _iso_date(value: Any) -> str | None:
    # SQLite hands DATE columns back as text, PostgreSQL as datetime.date.
    return None if value is None else str(value)[:10]


def save_batch(connection: Connection, batch_id: str, records: list[dict[str, Any]]) -> None:
    """Store a batch under ``batch_id``, replacing an earlier attempt of the same run."""
    connection.execute(text("DELETE FROM extract_rows WHERE batch_id = :batch_id"), {"batch_id": batch_id})
    connection.execute(text("DELETE FROM extract_batches WHERE batch_id = :batch_id"), {"batch_id": batch_id})
    connection.execute(
        text("INSERT INTO extract_batches (batch_id, extracted_at, record_count) VALUES (:batch_id, :at, :count)"),
        {"batch_id": batch_id, "at": dt.datetime.now(dt.timezone.utc).isoformat(), "count": len(records)},
    )
    if records:
        connection.execute(
            text("INSERT INTO extract_rows (batch_id, record_key, payload) VALUES (:batch_id, :key, :payload)"),
            [
                {"batch_id": batch_id, "key": r[RECORD_KEY], "payload": json.dumps(r, ensure_ascii=False)}
                for r in records
            ],
        )


def latest_batch_id(connection: Connection) -> str | None:
    """The most recent batch, for runs that were not started by an extract (``airflow dags test``)."""
    found = rows(connection, "SELECT batch_id FROM extract_batches ORDER BY extracted_at DESC, batch_id DESC LIMIT 1")
    return found[0]["batch_id"] if found else None


def load_records(connection: Connection, batch_ids: list[str]) -> list[tuple[str, str, Any]]:
    """``(batch_id, record_key, record)`` for every row of the batches, oldest batch first.

    A payload that is not JSON comes back as its text, for the check to reject.
    """
    loaded = []
    for batch_id in batch_ids:
        for row in rows(
            connection,
            "SELECT record_key, payload FROM extract_rows WHERE batch_id = :batch_id ORDER BY record_key",
            batch_id=batch_id,
        ):
            try:
                payload = json.loads(row["payload"])
            except ValueError:
                payload = row["payload"]
            loaded.append((batch_id, row["record_key"], payload))
    return loaded
