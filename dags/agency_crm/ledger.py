"""Where every referred invoice ends up: one ``referral_ledger`` row per record, and field-level rejections.

Both tables are keyed by the record (the CRM invoice id), and written with upserts, so running a
batch again updates rows instead of adding them. Ledger statuses:

- ``invalid``: failed the check before sending; the fields and reasons are in ``rejections``;
- ``rejected``: Debitura refused it (a 400 field error or a 422 business rule such as no partner
  for the debtor's jurisdiction); reasons also in ``rejections``;
- ``created`` / ``existing``: a managed case exists (``existing`` when it was there before this
  ledger knew the record; a row that says ``created`` keeps saying it when a later or overlapping
  run finds the same case);
- ``failed``: could not be referred this time; the next extract picks it up. A failure never
  overwrites a row that already holds a case.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection  # not in sqlalchemy's top level before 2.0 (Airflow 3.0 has 1.4)

from agency_crm.db import rows
from debitura_provider.api.errors import FieldErrors

WHOLE_RECORD = "record"
"""The ``rejections.field`` of a reason about the whole record (a business rule, a duplicate)."""

LEDGER_COLUMNS = (
    "record_key",
    "batch_id",
    "status",
    "reason",
    "case_id",
    "case_reference",
    "lifecycle",
    "close_code",
    "currency",
    "amount_referred",
    "remainder",
    "amount_collected",
    "last_payment_date",
    "last_event",
    "updated_at",
)

_SAME_REFERRAL = (
    "(referral_ledger.status = 'created' AND excluded.status IN ('created', 'existing') "
    "AND referral_ledger.case_id = excluded.case_id)"
)
"""A later run (an overlapping one, a re-extract) found the case an earlier run created: that is the
same referral, so the row keeps saying ``created``, and the batch that created it. The later run may
say ``created`` too: Debitura's idempotent replay carries no marker, so the bulk referral calls a
case ``existing`` only when told its id beforehand; the same case id is what tells."""
_KEPT_ON_SAME_REFERRAL = ("status", "batch_id")

_UPSERT_LEDGER = text(
    f"INSERT INTO referral_ledger ({', '.join(LEDGER_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in LEDGER_COLUMNS)}) "
    "ON CONFLICT (record_key) DO UPDATE SET "
    + ", ".join(
        f"{c} = CASE WHEN {_SAME_REFERRAL} THEN referral_ledger.{c} ELSE excluded.{c} END"
        if c in _KEPT_ON_SAME_REFERRAL
        else f"{c} = excluded.{c}"
        for c in LEDGER_COLUMNS
        if c != "record_key"
    )
    # A failed attempt (say, a run of an old batch during an outage) never hides a case already made.
    + " WHERE excluded.status <> 'failed' OR referral_ledger.case_id IS NULL"
)


MONEY_COLUMNS = ("amount_referred", "remainder", "amount_collected")
"""The ledger's amounts: bound as exact decimal text, read back with :func:`money`."""


def stored(amount: Decimal | int | float | str | None) -> str | None:
    """An amount as the ledger binds it: its exact decimal text (``"1234.50"``).

    Database drivers take no ``Decimal`` (sqlite3) or would bind a float; the column is
    ``NUMERIC(14, 2)``, so the database keeps every cent.
    """
    if amount is None:
        return None
    return format(money(amount), "f")


def money(value: Decimal | int | float | str | None) -> Decimal | None:
    """An amount read back from the database, exact.

    SQLite hands ``NUMERIC(14, 2)`` back as a float; with at most 14 significant digits its
    shortest text is the stored number, so ``repr`` recovers it to the cent.
    """
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(repr(value) if isinstance(value, float) else value)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def reason_of(errors: FieldErrors) -> str:
    """Field errors as one line: ``debtor.stateAlpha2: a US debtor needs its state``."""
    return "; ".join(f"{name}: {' / '.join(messages)}" for name, messages in errors.items())


def replace_rejections(
    connection: Connection, stage: str, batch_of: dict[str, str], errors: dict[str, FieldErrors], keys: Iterable[str]
) -> None:
    """Make ``rejections`` hold exactly ``errors`` for the records ``keys`` (a record fixed since is cleared)."""
    keys = list(keys)
    if keys:
        connection.execute(
            text("DELETE FROM rejections WHERE record_key IN :keys").bindparams(bindparam("keys", expanding=True)),
            {"keys": keys},
        )
    at = now_iso()
    values = [
        {"key": key, "field": name, "batch": batch_of[key], "stage": stage, "reason": " / ".join(messages), "at": at}
        for key, field_errors in errors.items()
        for name, messages in field_errors.items()
    ]
    if values:
        connection.execute(
            text(
                "INSERT INTO rejections (record_key, field, batch_id, stage, reason, rejected_at) "
                "VALUES (:key, :field, :batch, :stage, :reason, :at)"
            ),
            values,
        )


def upsert_ledger(connection: Connection, entries: list[dict[str, Any]]) -> None:
    """Insert or update one ledger row per entry (missing columns are stored as NULL)."""
    if entries:
        at = now_iso()
        connection.execute(_UPSERT_LEDGER, [_row(entry) | {"updated_at": at} for entry in entries])


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    row = {c: entry.get(c) for c in LEDGER_COLUMNS}
    return row | {c: stored(row[c]) for c in MONEY_COLUMNS}


def invalid_entries(records: dict[str, Any], batch_of: dict[str, str], errors: dict[str, FieldErrors]) -> list[dict]:
    """Ledger rows of records that failed the check."""
    entries = []
    for key, field_errors in errors.items():
        record = records.get(key)
        body = record if isinstance(record, dict) else {}
        entries.append(
            {
                "record_key": key,
                "batch_id": batch_of[key],
                "status": "invalid",
                "reason": reason_of(field_errors),
                "currency": _text(body.get("currencyCode")),
                "amount_referred": _number(body.get("amountToRecover")),
            }
        )
    return entries


def _text(value: Any) -> str | None:
    return value[:8] if isinstance(value, str) else None


def _number(value: Any) -> Decimal | None:
    return money(value) if isinstance(value, int | float | Decimal) and not isinstance(value, bool) else None


def ledger_rows(connection: Connection, record_keys: list[str]) -> list[dict[str, Any]]:
    """The ledger rows of the given records."""
    if not record_keys:
        return []
    statement = text("SELECT * FROM referral_ledger WHERE record_key IN :keys ORDER BY record_key").bindparams(
        bindparam("keys", expanding=True)
    )
    return [dict(row) for row in connection.execute(statement, {"keys": record_keys}).mappings()]


def rejection_rows(connection: Connection, record_keys: list[str]) -> list[dict[str, Any]]:
    """The field-level rejections of the given records."""
    if not record_keys:
        return []
    statement = text(
        "SELECT record_key, field, stage, reason FROM rejections WHERE record_key IN :keys ORDER BY record_key, field"
    ).bindparams(bindparam("keys", expanding=True))
    return [dict(row) for row in connection.execute(statement, {"keys": record_keys}).mappings()]


def batch_record_keys(connection: Connection, batch_ids: list[str]) -> list[str]:
    """Every record key of the given extract batches."""
    keys: set[str] = set()
    for batch_id in batch_ids:
        found = rows(connection, "SELECT record_key FROM extract_rows WHERE batch_id = :b", b=batch_id)
        keys.update(row["record_key"] for row in found)
    return sorted(keys)
