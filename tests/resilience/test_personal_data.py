"""No debtor personal data in Airflow: every example DAG runs on the sample CRM (whose debtors have
recognisable names, e-mails, phone numbers, addresses and invoice texts), webhook deliveries carry
debtor data in their ``data``, and not one of those values is found anywhere in the Airflow home: not in
its metadata database (XCom, rendered template fields, triggers, asset events, the webhook inbox), not
in any log, not in the run reports. The CRM database, where the data belongs, is the one file not
searched; that the values are found there shows the search works.

The run is the one the secrets sweep uses (sweep.py, once per session). Also here: the pieces that keep
the data out (case summaries, the webhook allow-list, validation messages), and the erasure of one
debtor from the example CRM.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from debitura_provider.api.models import Case, CreateManagedCaseRequest, TimelineItem
from debitura_provider.api.personal_data import (
    EVENT_DATA_FIELDS,
    event_envelope,
    personal_values,
    records_shown,
    request_shown,
    scrub,
    summary,
    timeline_summary,
)
from debitura_provider.api.referral import prepare
from tests.resilience.sweep import CRM_DB, SweptHome, contact_values, debtor_values, find_values, sweep

pytestmark = [pytest.mark.resilience, pytest.mark.airflow]

DEBTOR: dict[str, Any] = {
    "type": "Company",
    "name": "Rheinland Maschinenbau GmbH",
    "contactPerson": "Klaus Weber",
    "companyRegistrationNumber": "HRB 48213",
    "address": "Industriestraße 14",
    "zipCode": "50735",
    "city": "Köln",
    "countryAlpha2": "DE",
    "email": "buchhaltung@rheinland-mb.example",
    "phone": "+49 221 555 0140",
}
CASE: dict[str, Any] = {
    "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "reference": "Q8OAXF3W",
    "creditorReference": "NLM-2026-0091",
    "creditorComments": "Debtor asked for a copy of the invoice twice; nothing since.",
    "claimDescription": "Hydraulic winch overhaul",
    "grossAmount": 8650.0,
    "remainder": 8150.0,
    "currency": "EUR",
    "lifecycle": "Active",
    "closeCode": None,
    "dateCreated": "2026-11-20T10:00:00Z",
    "debtor": DEBTOR,
    "creditor": {
        "id": "6b7a1f23-9c48-4e72-a901-1d2b3e4f5a6b",
        "companyName": "Nordlys Marine AS",
        "officeEmail": "office@nordlys.example",
    },
    "assignedUser": {"name": "Partner Person", "email": "person@partner.example"},
}
PERSONAL = [v for k, v in DEBTOR.items() if k not in ("type", "countryAlpha2")] + [
    CASE["creditorComments"],
    CASE["claimDescription"],
    "person@partner.example",
]


@pytest.fixture(scope="module")
def home(swept_home: SweptHome) -> SweptHome:
    return swept_home


XCOM = "SELECT value FROM xcom"


def _rows(home: SweptHome, sql: str) -> list[str]:
    with sqlite3.connect(home.home / "airflow.db") as db:
        return [str(value) for (value,) in db.execute(sql)]


def test_the_values_searched_for_are_in_the_crm_database(home: SweptHome) -> None:
    values = debtor_values()
    assert len(values) > 100 and len(contact_values()) == 3 * 23
    found = set(find_values((home.home / CRM_DB).read_bytes(), values))
    assert set(contact_values().values()) <= found  # the search finds them where they belong


def test_the_runs_wrote_what_is_searched(home: SweptHome) -> None:
    assert home.states["debitura_referral"] == "success" and home.states["debitura_portfolio"] == "success"
    assert len(_rows(home, "SELECT value FROM xcom")) > 20
    assert len(_rows(home, "SELECT rendered_fields FROM rendered_task_instance_fields")) > 10
    extras = [json.loads(e) for e in _rows(home, "SELECT extra FROM asset_event")]
    assert {e.get("event") for e in extras} >= {"payment.created", "case.closed"}  # chat.created: no asset
    assert any(e.get("batch_id") for e in extras)  # the CRM extract's event
    logs = list((home.home / "logs").rglob("*.log"))
    assert len(logs) >= len(home.dag_ids) and list(home.home.rglob("*.html"))  # the referral reports


@pytest.mark.parametrize(
    ("what", "sql"),
    [
        ("XCom", "SELECT value FROM xcom"),
        ("rendered template fields", "SELECT rendered_fields FROM rendered_task_instance_fields"),
        ("trigger kwargs", "SELECT kwargs FROM trigger"),
        ("asset-event extras", "SELECT extra FROM asset_event"),
        ("the task state store", "SELECT value FROM task_state_store"),
        ("the asset state store", "SELECT value FROM asset_state_store"),
        ("the webhook inbox", "SELECT envelope FROM debitura_webhook_inbox"),
    ],
)
def test_the_metadata_database_holds_no_debtor_value(home: SweptHome, what: str, sql: str) -> None:
    assert find_values("\n".join(_rows(home, sql)).encode(), debtor_values()) == [], what


def test_no_log_holds_a_debtor_value(home: SweptHome) -> None:
    found = {
        str(p.relative_to(home.home)): hits
        for p in sorted((home.home / "logs").rglob("*"))
        if p.is_file() and (hits := find_values(p.read_bytes(), debtor_values()))
    }
    assert found == {}


def test_nothing_in_the_airflow_home_but_the_crm_holds_a_debtor_value(home: SweptHome) -> None:
    assert sweep(home.home, debtor_values()) == {}


def test_webhook_events_keep_ids_and_amounts_only(home: SweptHome) -> None:
    extras = [json.loads(e) for e in _rows(home, "SELECT extra FROM asset_event")]
    delivered = [e for e in extras if e.get("event") in EVENT_DATA_FIELDS]
    assert delivered
    for envelope in delivered:
        assert set(envelope["data"]) <= set(EVENT_DATA_FIELDS[envelope["event"]]), envelope
    (paid,) = [e["data"] for e in delivered if e["event"] == "payment.created"]
    assert paid["amount"] == 125.5 and paid["paymentId"] and paid["caseId"] and paid["remainder"] == 874.5


def test_a_case_summary_has_ids_money_and_lifecycle_but_no_personal_data() -> None:
    kept = summary(Case.model_validate(CASE))
    text = json.dumps(kept, ensure_ascii=False)
    assert [value for value in PERSONAL if value in text] == []
    assert kept["id"] == CASE["id"] and kept["reference"] == "Q8OAXF3W" and kept["creditorReference"] == "NLM-2026-0091"
    assert kept["creditor"] == {"id": CASE["creditor"]["id"], "companyName": "Nordlys Marine AS"}
    assert (kept["currency"], kept["lifecycle"]) == ("EUR", "Active")
    assert float(kept["grossAmount"]) == 8650.0 and float(kept["remainder"]) == 8150.0
    assert "debtor" not in kept and "dateCreated" in kept


def test_a_timeline_summary_drops_the_free_text() -> None:
    item = TimelineItem.model_validate(
        {
            "date": "2026-11-21T00:00:00Z",
            "type": "Note",
            "title": "Note",
            "description": "Klaus Weber asked to call +49 221 555 0140",
            "actor": {"type": "User", "name": "Partner Person"},
        }
    )
    kept = timeline_summary(item)
    assert kept["type"] == "Note" and kept["title"] == "Note" and kept["date"].startswith("2026-11-21")
    assert "Klaus" not in json.dumps(kept) and "Partner Person" not in json.dumps(kept)


def test_the_receiver_allow_list_drops_unknown_and_free_text_fields() -> None:
    envelope = {
        "id": "e1",
        "specVersion": "1.0",
        "event": "case.closed",
        "timestamp": "2026-11-21T00:00:00Z",
        "data": {"caseId": "c1", "closeCode": "Paid", "closeComment": "Klaus Weber paid in cash", "debtor": DEBTOR},
        "links": {"self": "https://x.example/managed-cases/c1"},
        "extra": 1,
    }
    kept = event_envelope(envelope)
    assert kept == {
        "id": "e1",
        "specVersion": "1.0",
        "event": "case.closed",
        "timestamp": "2026-11-21T00:00:00Z",
        "links": {"self": "https://x.example/managed-cases/c1"},
        "data": {"caseId": "c1", "closeCode": "Paid"},
    }
    assert event_envelope({"event": "something.new", "data": {"caseId": "c1", "email": "a@b.example"}})["data"] == {
        "caseId": "c1"
    }


def test_validation_outcomes_name_the_field_and_record_but_not_the_personal_value() -> None:
    record = {**copy.deepcopy(_request()), "record_id": "INV-1"}
    record["debtor"]["email"] = "klaus.weber(at)rheinland-mb.example"
    _, rejected = prepare([record])
    (outcome,) = rejected.values()
    assert outcome.record_key == "INV-1" and outcome.field_errors and "debtor.email" in outcome.field_errors
    assert "klaus.weber" not in json.dumps(outcome.field_errors) and "klaus.weber" not in (outcome.reason or "")


def _request() -> dict[str, Any]:
    body = {
        "creditorCompanyName": "Nordlys Marine AS",
        "creditorCountryAlpha2": "NO",
        "currencyCode": "EUR",
        "amountToRecover": 8650.0,
        "date": "2026-05-07",
        "dueDate": "2026-06-06",
        "debtor": copy.deepcopy(DEBTOR),
    }
    CreateManagedCaseRequest.model_validate(body)
    return body


def test_one_debtor_is_erased_from_the_example_crm_and_ledger(tmp_path: Path) -> None:
    import sys

    from sqlalchemy import create_engine, text

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))
    from agency_crm.checks import CheckedBatch, save_checked
    from agency_crm.erasure import erase_debtor
    from agency_crm.extract import overdue_invoices, save_batch
    from agency_crm.ledger import upsert_ledger
    from agency_crm.seed import seed

    path = tmp_path / CRM_DB
    engine = create_engine(f"sqlite:///{path}")
    import datetime as dt

    with engine.begin() as connection:
        seed(connection)
        records = overdue_invoices(connection, dt.date.today(), 30)
        save_batch(connection, "b1", records)
        keys = [r["record_id"] for r in records]
        save_checked(connection, "run-1", CheckedBatch(valid=records, batch_of=dict.fromkeys(keys, "b1")))
        upsert_ledger(
            connection,
            [
                {
                    "record_key": "INV-10003",
                    "batch_id": "b1",
                    "status": "created",
                    "case_id": "c-3",
                    "amount_referred": 2890.0,
                    "last_event": "Emily Rhodes promised to pay",
                    "reason": None,
                }
            ],
        )
    emily = {v: k for v, k in debtor_values().items() if k.startswith("D-003") or k.startswith("INV-10003")}
    others = {v: k for v, k in contact_values().items() if not k.startswith("D-003")}
    assert len(find_values(path.read_bytes(), emily)) == len(emily)
    with engine.begin() as connection:
        result = erase_debtor(connection, "D-003")
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM"))
        ledger = dict(
            connection.execute(
                text("SELECT case_id, amount_referred FROM referral_ledger WHERE record_key = 'INV-10003'")
            )
            .one()
            ._mapping
        )
    engine.dispose()
    assert result["invoices"] == ["INV-10003"] and result["debitura_cases"] == ["c-3"]
    assert result["changed"]["debtors"] == 1 and result["changed"]["extract_rows"] == 1
    assert find_values(path.read_bytes(), emily) == []  # gone, deleted pages included
    assert len(find_values(path.read_bytes(), others)) == len(others)  # every other debtor is still there
    assert ledger == {"case_id": "c-3", "amount_referred": 2890.0}  # the money can still be accounted for


def test_messages_that_echo_a_personal_value_get_it_replaced() -> None:
    record = {"record_id": "INV-1", "comments": "Call Klaus first", "debtor": DEBTOR}
    values = personal_values(record)
    assert "buchhaltung@rheinland-mb.example" in values and "Call Klaus first" in values and "DE" not in values
    message = "Debitura answered 400: debtor.email: 'buchhaltung@rheinland-mb.example' is invalid"
    assert scrub(message, values) == "Debitura answered 400: debtor.email: '<personal data>' is invalid"


def test_rendered_fields_show_requests_and_records_without_personal_data() -> None:
    request = {**_request(), "comments": "Call Klaus first", "claim_description": "Winch"}
    shown = json.dumps([request_shown(request), records_shown([{**request, "record_id": "INV-1"}], "record_id")])
    assert [value for value in [*PERSONAL, "Call Klaus first", "Winch"] if value in shown] == []
    assert request_shown(request)["debtor"] == {"type": "Company", "countryAlpha2": "DE"}
    assert request_shown(request)["amountToRecover"] == 8650.0
    assert records_shown([{**request, "record_id": "INV-1"}], "record_id")["recordKeys"] == ["INV-1"]


def _watch_result(full: bool) -> dict[str, Any]:
    from debitura_provider.api.watch import CaseWatch, WatchSpec

    watch = CaseWatch([CASE["id"]], WatchSpec.build("lifecycle_in", lifecycles=["Active"]), full_snapshots=full)
    steps = watch.cycle({CASE["id"]: Case.model_validate(CASE)})
    with pytest.raises(StopIteration) as done:
        next(steps)
    return done.value.value.to_json()


def test_a_watch_returns_summaries_and_the_whole_case_only_when_asked() -> None:
    default, full = _watch_result(full=False), _watch_result(full=True)
    assert default["satisfied"] == [CASE["id"]] and default["cases"] == [summary(Case.model_validate(CASE))]
    assert [value for value in PERSONAL if value in json.dumps(default, ensure_ascii=False)] == []
    assert full["cases"][0]["debtor"]["email"] == DEBTOR["email"]  # include_snapshots: the consequence is real


def test_a_query_row_becomes_a_record() -> None:
    from debitura_provider.operators.referral import _record_of

    row = {
        "record_id": "INV-1",
        "payload": json.dumps({"currencyCode": "EUR", "debtor": {"type": "Person"}}),
        "debtor.name": "Anna Schmidt",
        "debtor.email": None,
        "amountToRecover": 940.0,
    }
    assert _record_of(row, "payload") == {
        "record_id": "INV-1",
        "currencyCode": "EUR",
        "amountToRecover": 940.0,
        "debtor": {"type": "Person", "name": "Anna Schmidt"},
    }
    broken = _record_of({"record_id": "INV-2", "payload": "{not json"}, "payload")
    assert broken == {"record_id": "INV-2", "payload": "<not a JSON object>"}  # rejected by name, not lost
    _, rejected = prepare([broken])
    assert rejected[0].record_key == "INV-2" and "payload" in (rejected[0].field_errors or {})


def test_the_bulk_operator_takes_records_or_a_query_not_both() -> None:
    from debitura_provider.operators.referral import ReferInvoicesOperator

    with pytest.raises(ValueError, match="either as records or as records_sql"):
        ReferInvoicesOperator(task_id="refer")
    with pytest.raises(ValueError, match="either as records or as records_sql"):
        ReferInvoicesOperator(task_id="refer", records=[], records_sql="SELECT 1", records_conn_id="crm")
    with pytest.raises(ValueError, match="needs records_conn_id"):
        ReferInvoicesOperator(task_id="refer", records_sql="SELECT 1")


def test_the_referral_read_its_records_from_the_crm_and_showed_only_the_query(home: SweptHome) -> None:
    shown = _rows(home, "SELECT rendered_fields FROM rendered_task_instance_fields WHERE task_id = 'refer_invoices'")
    assert shown and all("checked_records" in fields for fields in shown)
    outcomes = [json.loads(v) for v in _rows(home, f"{XCOM} WHERE task_id = 'refer_invoices' AND key = 'return_value'")]
    assert any(isinstance(o, list) and any(x.get("status") == "created" for x in o) for o in outcomes)
    checked = [json.loads(v) for v in _rows(home, f"{XCOM} WHERE task_id = 'check_extract' AND key = 'return_value'")]
    assert checked and all(set(c) == {"batch_ids", "to_refer", "invalid"} for c in checked)
