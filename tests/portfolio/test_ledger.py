"""The ledger keeps the first referral when a later or overlapping run finds the same case."""

from __future__ import annotations

# dags/ is on sys.path (tests/fixtures/example_dags.py), as Airflow puts it for the DAG files.
from agency_crm.db import ensure_schema, rows
from agency_crm.ledger import upsert_ledger
from sqlalchemy import create_engine

CASE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def entry(status: str, batch: str, **more: object) -> dict[str, object]:
    return {
        "record_key": "INV-1",
        "batch_id": batch,
        "status": status,
        "case_id": CASE,
        "currency": "EUR",
        "amount_referred": "100.00",
        **more,
    }


def test_a_second_run_finding_the_same_case_keeps_created_and_its_batch_but_takes_fresh_figures() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        ensure_schema(connection)
        upsert_ledger(connection, [entry("created", "batch-1", lifecycle="Active", remainder="100.00")])
        upsert_ledger(connection, [entry("existing", "batch-2", lifecycle="Closed", remainder="0.00")])
        [row] = rows(connection, "SELECT * FROM referral_ledger")
    assert (row["status"], row["batch_id"], row["lifecycle"]) == ("created", "batch-1", "Closed")


def test_a_second_run_that_says_created_for_the_same_case_keeps_the_first_batch() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        ensure_schema(connection)
        upsert_ledger(connection, [entry("created", "batch-1", lifecycle="Active")])
        upsert_ledger(connection, [entry("created", "batch-2", lifecycle="Closed")])  # a replay, unmarked
        [row] = rows(connection, "SELECT * FROM referral_ledger")
    assert (row["status"], row["batch_id"], row["lifecycle"]) == ("created", "batch-1", "Closed")


def test_another_case_or_a_rejection_still_replaces_the_row() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        ensure_schema(connection)
        upsert_ledger(connection, [entry("created", "batch-1")])
        upsert_ledger(connection, [entry("existing", "batch-2", case_id="c0ffee00-0000-4000-8000-000000000001")])
        [row] = rows(connection, "SELECT * FROM referral_ledger")
        assert (row["status"], row["batch_id"]) == ("existing", "batch-2")
        upsert_ledger(connection, [entry("failed", "batch-3", case_id=None)])
        [row] = rows(connection, "SELECT * FROM referral_ledger")
    assert row["status"] == "existing"  # a failure never hides a case
