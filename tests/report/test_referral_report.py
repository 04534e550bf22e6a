"""The referral report: sums per currency, bars to scale, links to cases, nothing unescaped."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import sqlalchemy

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "dags"))

from agency_crm import report  # noqa: E402
from agency_crm.db import ensure_schema  # noqa: E402

ROWS = [
    {
        "record_key": "INV-1",
        "client": "Fjord A/S",
        "status": "created",
        "case_id": "c1",
        "case_reference": "AAAA1111",
        "lifecycle": "Active",
        "currency": "USD",
        "amount_referred": 1000.0,
        "amount_collected": 250.0,
        "remainder": 750.0,
    },
    {
        "record_key": "INV-2",
        "client": "Fjord A/S",
        "status": "existing",
        "case_id": "c2",
        "case_reference": "BBBB2222",
        "lifecycle": "Closed",
        "currency": "USD",
        "amount_referred": 500.0,
        "amount_collected": 500.0,
        "remainder": 0.0,
    },
    {
        "record_key": "INV-3",
        "client": "Hygge ApS",
        "status": "created",
        "case_id": "c3",
        "case_reference": "CCCC3333",
        "lifecycle": "Active",
        "currency": "EUR",
        "amount_referred": 200.0,
        "amount_collected": None,
        "remainder": None,
    },
    {
        "record_key": "INV-4",
        "client": "<script>alert(1)</script>",
        "status": "invalid",
        "reason": "debtor.stateAlpha2: a US debtor needs its state",
        "currency": "USD",
        "amount_referred": 90.0,
    },
]


def test_totals_are_per_currency_and_only_for_referred_cases() -> None:
    by_client = report.totals_by(ROWS, "client")
    assert by_client["USD"] == {"Fjord A/S": report.Totals(1500.0, 750.0, 750.0)}
    assert by_client["EUR"] == {"Hygge ApS": report.Totals(200.0, 0.0, 200.0)}  # no remainder yet: referred - collected
    by_lifecycle = report.totals_by(ROWS, "lifecycle")
    assert by_lifecycle["USD"] == {
        "Active": report.Totals(1000.0, 250.0, 750.0),
        "Closed": report.Totals(500.0, 500.0, 0.0),
    }


def test_bars_are_drawn_to_scale() -> None:
    svg = report.bar_chart(
        "By client", {"A": report.Totals(400.0, 100.0, 300.0), "B": report.Totals(200.0, 0.0, 200.0)}, "USD"
    )
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths == [250.0, 62.5, 187.5, 125.0, 0.0, 125.0]


def test_the_page_escapes_crm_text_and_links_cases() -> None:
    page = report.render_report(
        ROWS, title="Referral run", subtitle="batch 1", case_url=lambda i: f"http://portal/cases/{i}"
    )
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<a href="http://portal/cases/c1">AAAA1111</a>' in page
    assert "a US debtor needs its state" in page
    assert page.count("<svg") == 4  # by client and by lifecycle, for USD and EUR
    assert page.index("<h3>USD</h3>") < page.index("<h3>EUR</h3>")  # largest currency first


def test_rows_come_from_the_ledger_with_client_names(tmp_path: Path) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    with engine.begin() as connection:
        ensure_schema(connection)
        connection.execute(
            sqlalchemy.text("INSERT INTO clients (client_id, company_name) VALUES ('CL-1', 'Fjord A/S')")
        )
        connection.execute(
            sqlalchemy.text("INSERT INTO debtors (debtor_id, debtor_type, name) VALUES ('D-1', 'Company', 'X')")
        )
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO invoices (invoice_id, client_id, debtor_id, invoice_number) VALUES ('INV-1', 'CL-1', 'D-1', 'N1')"
            )
        )
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO referral_ledger (record_key, batch_id, status, currency, amount_referred, updated_at) "
                "VALUES ('INV-1', 'b', 'created', 'USD', 10, 'now'), ('INV-9', 'b', 'failed', NULL, NULL, 'now')"
            )
        )
        rows = report.load_rows(connection, ["INV-1", "INV-9"])
    engine.dispose()
    assert [(r["record_key"], r["client"], r["status"]) for r in rows] == [
        ("INV-1", "Fjord A/S", "created"),
        ("INV-9", None, "failed"),
    ]
    assert report.load_rows(connection, []) == []


def test_a_run_report_covers_the_batches_of_the_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DEBITURA_ARTIFACTS_URL", (tmp_path / "out").as_uri())
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    with engine.begin() as connection:
        ensure_schema(connection)
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO extract_rows (batch_id, record_key, payload) VALUES ('b1', 'INV-1', '{}'), ('b2', 'INV-2', '{}')"
            )
        )
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO referral_ledger (record_key, batch_id, status, case_id, case_reference, lifecycle, currency, "
                "amount_referred, remainder, updated_at) VALUES "
                "('INV-1', 'b1', 'created', 'c-1', 'REF00001', 'Active', 'EUR', 100, 60, 'now'), "
                "('INV-2', 'b2', 'created', 'c-2', 'REF00002', 'Active', 'EUR', 999, 999, 'now')"
            )
        )
        path = report.write_run_report(connection, ["b1"], "manual__1", case_url=lambda i: f"http://portal/cases/{i}")
    engine.dispose()
    page = path.read_text()
    assert str(path) == (tmp_path / "out" / "reports" / "manual__1.html").as_uri()
    assert "REF00001" in page and "REF00002" not in page
    assert "Batches b1; 1 records" in page


def test_reports_go_to_the_airflow_home_by_default(monkeypatch) -> None:
    monkeypatch.delenv("DEBITURA_ARTIFACTS_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", "/srv/airflow")
    assert str(report.report_dir()) == "file:///srv/airflow/debitura/reports"
