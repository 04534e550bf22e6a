"""Erase one debtor from the agency's side: the CRM rows, the extract copies and the ledger's free text.

What goes: the ``debtors`` row, the debtor's ``invoices``, every extracted copy of those invoices
(``extract_rows`` payloads), their ``rejections`` and ``checked_records``, and the ledger's free
text about them (``reason``, ``last_event``). What stays: each ledger row's record key, case id,
case reference, status, amounts and dates, and the ``payment_notifications`` (ids and amounts),
so that the agency can still account for the money and ask Debitura to erase the cases it holds.
On SQLite the command then runs ``VACUUM``, so that the deleted rows leave the file too. Airflow
holds no record data to erase (docs/data-protection.md)::

    AIRFLOW_CONN_DEBITURA_CRM=... python dags/agency_crm/erasure.py D-003
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Connection  # not in sqlalchemy's top level before 2.0 (Airflow 3.0 has 1.4)

_BY_KEYS = {
    "extract_rows": "DELETE FROM extract_rows WHERE record_key IN :keys",
    "rejections": "DELETE FROM rejections WHERE record_key IN :keys",
    "checked_records": "DELETE FROM checked_records WHERE record_key IN :keys",
    "referral_ledger": "UPDATE referral_ledger SET reason = NULL, last_event = NULL WHERE record_key IN :keys",
}


def _has_table(connection: Connection, name: str) -> bool:
    return inspect(connection).has_table(name)


def erase_debtor(connection: Connection, debtor_id: str) -> dict[str, Any]:
    """Erase ``debtor_id``; returns the rows changed per table and the cases to ask Debitura to erase."""
    invoices = [
        row[0]
        for row in connection.execute(text("SELECT invoice_id FROM invoices WHERE debtor_id = :d"), {"d": debtor_id})
    ]
    changed: dict[str, int] = {}
    cases: list[str] = []
    if invoices:
        if _has_table(connection, "referral_ledger"):
            found = connection.execute(
                text(
                    "SELECT case_id FROM referral_ledger WHERE record_key IN :keys AND case_id IS NOT NULL"
                ).bindparams(bindparam("keys", expanding=True)),
                {"keys": invoices},
            )
            cases = sorted(row[0] for row in found)
        for table, statement in _BY_KEYS.items():
            if _has_table(connection, table):
                done = connection.execute(
                    text(statement).bindparams(bindparam("keys", expanding=True)), {"keys": invoices}
                )
                changed[table] = done.rowcount
    changed["invoices"] = connection.execute(
        text("DELETE FROM invoices WHERE debtor_id = :d"), {"d": debtor_id}
    ).rowcount
    changed["debtors"] = connection.execute(text("DELETE FROM debtors WHERE debtor_id = :d"), {"d": debtor_id}).rowcount
    return {"debtor_id": debtor_id, "invoices": invoices, "changed": changed, "debitura_cases": cases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("debtor_id", help="the CRM's debtor id, e.g. D-003")
    parser.add_argument("--conn-id", default="debitura_crm", help="the CRM's Airflow connection")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from agency_crm.db import crm_hook, transaction

    with transaction(args.conn_id) as connection:
        result = erase_debtor(connection, args.debtor_id)
    engine = crm_hook(args.conn_id).get_sqlalchemy_engine()
    try:
        if engine.dialect.name == "sqlite":  # deleted rows stay in the file's free pages until then
            with engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM"))
    finally:
        engine.dispose()
    print(json.dumps(result, indent=2))
    return 0 if result["changed"]["debtors"] else 1


if __name__ == "__main__":
    sys.exit(main())
