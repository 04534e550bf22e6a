"""``debitura_portfolio`` with real Airflow (``dag.test()``), a sandbox whose partners work the cases, and the CRM."""

from __future__ import annotations

import time
from typing import Any

import pytest

from debitura_provider.api import DebituraClient
from debitura_provider.api.money import to_minor
from debitura_provider.api.watch.scan import normalize_event
from tests.fixtures.example_dags import ExampleSetup

pytestmark = pytest.mark.airflow


def _ledger() -> list[dict[str, Any]]:
    from agency_crm.db import rows, transaction

    with transaction() as connection:
        return rows(connection, "SELECT * FROM referral_ledger WHERE case_id IS NOT NULL ORDER BY record_key")


def _settled(client: DebituraClient, case_ids: list[str]) -> dict[str, Any]:
    """The cases once two reads a second apart agree (the simulated partners work fast)."""
    before: dict[str, Any] = {}
    for _ in range(60):
        now = {str(c.id): (c.lifecycle, c.remainder, c.close_code) for c in client.get_managed_cases(case_ids)}
        if now == before:
            return {str(c.id): c for c in client.get_managed_cases(case_ids)}
        before = now
        time.sleep(1.0)
    raise AssertionError("the sandbox's cases did not settle")


def test_a_run_brings_every_ledger_row_to_debituras_figures_and_flags_cases(
    example_setup: ExampleSetup, airflow_dags: dict[str, Any]
) -> None:
    from agency_crm.db import rows, transaction

    assert str(airflow_dags["debitura_crm_extract"].test().state) == "success"
    assert str(airflow_dags["debitura_referral"].test().state) == "success"
    sandbox = example_setup.sandbox
    with DebituraClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        cases = _settled(client, [row["case_id"] for row in _ledger()])
    run = airflow_dags["debitura_portfolio"].test()
    assert str(run.state) == "success"
    ledger = _ledger()
    assert ledger and len(ledger) == len(cases)
    for row in ledger:
        case = cases[row["case_id"]]
        assert (row["lifecycle"], row["close_code"]) == (case.lifecycle, case.close_code)
        assert to_minor(str(row["remainder"]), case.currency) == to_minor(case.remainder, case.currency)
        assert to_minor(str(row["amount_collected"]), case.currency) == to_minor(case.paid_off, case.currency)
    with transaction() as connection:
        flags = {r["case_id"]: r["flag"] for r in rows(connection, "SELECT * FROM case_flags WHERE cleared_at IS NULL")}
    expected = {
        cid: "closed_without_payment"
        for cid, c in cases.items()
        if c.lifecycle == "Closed" and to_minor(c.paid_off, c.currency) == 0
    } | {cid: "paused" for cid, c in cases.items() if c.lifecycle == "Paused"}
    expected |= {cid: "more_info_required" for cid, c in cases.items() if c.lifecycle == "More Info Required"}
    assert flags == expected


def test_the_same_payment_from_both_sources_in_any_order_is_notified_once(example_setup: ExampleSetup) -> None:
    from agency_crm.db import ensure_schema, rows, transaction
    from agency_crm.portfolio import ensure_tables, record_notifications

    data = {
        "caseId": "c0ffee00-0000-4000-8000-000000000001",
        "paymentId": "p-1",
        "amount": "12.50",
        "currency": "EUR",
        "remainder": "87.50",
        "reference": "REF1",
    }
    webhook = {
        "id": "a1b2",
        "specVersion": "1.0",
        "event": "payment.created",
        "timestamp": "2026-01-02T00:00:00Z",
        "data": data,
        "links": {},
    }
    scan = {
        "from_trigger": True,
        "payload": {"id": "scan-1", "type": "payment.created", "createdAt": "2026-01-02T00:00:00Z", "data": data},
    }
    edited = {
        "id": "scan-2",
        "type": "payment.created",
        "createdAt": "2026-01-03T00:00:00Z",
        "data": data | {"amount": "15.00", "previousAmount": "12.50"},
    }
    with transaction() as connection:
        ensure_schema(connection)
        ensure_tables(connection)
        first = record_notifications(connection, [normalize_event(scan), normalize_event(webhook)])
        again = record_notifications(connection, [normalize_event(webhook), normalize_event(edited)])
        again += record_notifications(connection, [normalize_event(edited), normalize_event(scan)])
        notes = rows(
            connection,
            "SELECT event_type, amount FROM payment_notifications WHERE payment_id = 'p-1' ORDER BY occurred_at",
        )
    assert (first, again) == (1, 1)
    assert [(n["event_type"], str(n["amount"])) for n in notes] == [
        ("payment.created", "12.5"),
        ("payment.edited", "15"),
    ]
