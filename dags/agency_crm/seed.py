"""Fill the CRM database with the sample agency: Nordic clients with debtors abroad.

The sample (``sample/*.csv``) was written as of :data:`SAMPLE_AS_OF`; seeding shifts every invoice
date by the days since then, so the invoices are as overdue on any day as they were on that one.
Seeding twice changes nothing (rows already present are kept).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection  # not in sqlalchemy's top level before 2.0 (Airflow 3.0 has 1.4)

from agency_crm.db import ensure_schema

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_AS_OF = dt.date(2026, 10, 1)
# Parent tables first, so that foreign keys hold on databases that enforce them.
TABLES = ("clients", "debtors", "invoices", "agency_coverage")
_DATE_COLUMNS = ("issue_date", "due_date")
_NUMBER_COLUMNS = ("amount_due",)


def sample_rows(table: str, today: dt.date) -> list[dict[str, Any]]:
    """One sample CSV as rows ready to insert: empty cells as NULL, dates shifted to ``today``."""
    shift = today - SAMPLE_AS_OF
    with (SAMPLE_DIR / f"{table}.csv").open(newline="", encoding="utf-8") as handle:
        rows = [{key: (value if value != "" else None) for key, value in row.items()} for row in csv.DictReader(handle)]
    for row in rows:
        for column in _DATE_COLUMNS:
            if row.get(column):
                row[column] = (dt.date.fromisoformat(row[column]) + shift).isoformat()
        for column in _NUMBER_COLUMNS:
            if row.get(column):
                row[column] = float(row[column])
    return rows


def seed(connection: Connection, today: dt.date | None = None) -> dict[str, int]:
    """Create the tables and insert the sample rows that are not there yet; returns rows per table."""
    ensure_schema(connection)
    counts = {}
    for table in TABLES:
        rows = sample_rows(table, today or dt.date.today())
        columns = list(rows[0])
        key = columns[0]
        statement = text(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
            f"ON CONFLICT ({key}) DO NOTHING"
        )
        connection.execute(statement, rows)
        counts[table] = len(rows)
    return counts
