"""The operators under real Airflow (``dag.test()`` on a migrated sqlite DB) against the sandbox over HTTP."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from debitura_provider.api import DebituraClient
from debitura_provider.api.referral import CLOCK_TOLERANCE
from debitura_provider.operators.managed_cases import CreateManagedCaseOperator, RecordTestPaymentOperator
from tests.airflow_layer.cases import invoice, managed_case_count, test_case

pytestmark = pytest.mark.airflow


def test_a_retried_create_returns_the_first_case(run_dag: Any, sandbox_client: DebituraClient, case_tag: str) -> None:
    before = managed_case_count(sandbox_client)
    conf = {"creditor": "Fjord Logistics A/S", "amount": 512.5, "date": "2026-01-15", "tag": case_tag}

    first = run_dag("test_create_case", conf=conf)

    assert first.states == {"debtor": "success", "create": "success", "read_downstream": "success"}
    assert first.ti("create").try_number == 2  # the first try died after the case was created
    created = first.xcom("create")
    assert first.xcom("read_downstream") == {"id": created["id"], "isTestCase": True, "remainder": 512.5}
    assert created["debtor"]["stateAlpha2"] == "CA" and created["currency"] == "USD"  # XComArg and Jinja fields
    portal = f"{sandbox_client.base_url}/portal/cases/{created['id']}"
    assert first.xcom("create", key="debitura_case_url") == portal
    assert first.xcom("create", key="_link_DebituraCaseLink") == portal

    second = run_dag("test_create_case", conf=conf)

    assert second.xcom("create")["id"] == created["id"]
    assert managed_case_count(sandbox_client) == before + 1


def test_an_invalid_case_fails_at_once_naming_the_field(
    run_dag: Any, sandbox_client: DebituraClient, case_tag: str
) -> None:
    before = managed_case_count(sandbox_client)
    bad = invoice(case_tag, debtor={"type": "Person", "name": "Sam Rivera", "countryAlpha2": "US"})

    run = run_dag("test_create_case_invalid", conf={"case": bad})

    assert run.states == {"create": "failed"}
    assert run.ti("create").try_number == 1  # retries=1, yet not retried
    with pytest.raises(AirflowFailException, match=r"debtor\.stateAlpha2: a US debtor needs its state"):
        CreateManagedCaseOperator(task_id="create", case=bad).execute({})  # type: ignore[arg-type]
    assert managed_case_count(sandbox_client) == before


def test_timeline_all_or_only_after_a_time(run_dag: Any, sandbox_client: DebituraClient, case_tag: str) -> None:
    case_id = test_case(sandbox_client, case_tag)
    sandbox_client.record_test_payment(case_id, {"date": "2026-01-20", "paymentAmount": 25})
    items = sandbox_client.get_managed_case_timeline(case_id).items

    everything = run_dag("test_fetch_timeline", conf={"case_id": case_id})
    after = run_dag("test_fetch_timeline", conf={"case_id": case_id, "since": items[1].date.isoformat()})

    assert [i["title"] for i in everything.xcom("timeline")] == [i.title for i in items]
    assert [i["title"] for i in after.xcom("timeline")] == [i.title for i in items[2:]]
    assert after.xcom("timeline")[-1]["type"] == "PaymentRegistered"


def test_a_lost_payment_answer_is_not_paid_twice(run_dag: Any, sandbox_client: DebituraClient, case_tag: str) -> None:
    case_id = test_case(sandbox_client, case_tag)

    run = run_dag("test_record_payment", conf={"case_id": case_id, "amount": "40"})

    assert run.states == {"pay": "success"}
    assert run.ti("pay").try_number == 2
    payments = sandbox_client.get_managed_case_payments(case_id)
    assert len(payments) == 1
    result = run.xcom("pay")
    assert result["paymentId"] == str(payments[0].id)
    assert (result["paymentAmount"], result["remainingAmount"], result["caseClosed"]) == (40.0, 60.0, False)


def test_a_production_case_is_refused_before_sending(
    run_dag: Any, sandbox_client: DebituraClient, case_tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = str(sandbox_client.create_managed_case(invoice(None, isTest=False)).id)
    sent: list[str] = []
    monkeypatch.setattr(RecordTestPaymentOperator, "_send", lambda self, client, case_id, body: sent.append(case_id))

    run = run_dag("test_record_payment_production", conf={"case_id": production})

    assert run.states == {"pay": "failed"}
    assert sent == []


def _wait_until(moment: dt.datetime) -> None:
    time.sleep(max(0.0, (moment - dt.datetime.now(dt.timezone.utc)).total_seconds()))


def _record(key: str, tag: str, **changes: Any) -> dict[str, Any]:
    return {"record_id": key, **invoice(tag, creditorReference=f"{tag}-{key}", **changes)}


def test_bulk_referral_outcomes_and_idempotent_rerun(
    run_dag: Any, sandbox_client: DebituraClient, case_tag: str
) -> None:
    company = {"type": "Company", "name": "Nordlicht GmbH", "contactPerson": "Eva Berg", "countryAlpha2": "DE"}
    records = [
        _record("R1", case_tag),
        _record("R2", case_tag, debtor=company, currencyCode="EUR", amountToRecover=2500.0),
        _record("R3", case_tag, debtor={"type": "Person", "name": "No State", "countryAlpha2": "US"}),
        _record("R1", case_tag, amountToRecover=7.0),
        {**_record("R5", case_tag), "creditorReference": f"{case_tag}-R1"},
        _record("R6", case_tag, debtor={"type": "Person", "name": "Kim Lee", "countryAlpha2": "GB"}, isTest=False),
        _record("R7", case_tag, amountToRecover=0),
    ]
    before = managed_case_count(sandbox_client)

    first = run_dag("test_refer_invoices", conf={"records": records, "tag": case_tag})

    outcomes = first.xcom("refer")
    assert [o["recordKey"] for o in outcomes] == ["R1", "R2", "R3", "R1", "R5", "R6", "R7"]
    assert [o["status"] for o in outcomes] == [
        "created", "created", "rejected", "rejected", "rejected", "created", "rejected"
    ]
    assert first.xcom("count") == {"created": 3, "rejected": 4}
    assert outcomes[2]["fieldErrors"] == {
        "debtor.stateAlpha2": ["a US debtor needs its state (e.g. 'CA'), which decides the jurisdiction"]
    }
    assert outcomes[3]["reason"] == "duplicate of R1 in this batch"
    assert outcomes[4]["reason"] == "duplicate of R1 in this batch"
    assert "amountToRecover" in outcomes[6]["fieldErrors"]
    assert all(o["caseId"] is None and not o["retryable"] for o in outcomes if o["status"] == "rejected")
    created = {o["recordKey"]: o for o in outcomes if o["status"] == "created"}
    assert managed_case_count(sandbox_client) == before + 3
    case = sandbox_client.get_managed_case(created["R6"]["caseId"])
    assert case.is_test_case  # is_test=True overrides the record
    assert (created["R2"]["currency"], created["R2"]["remainder"]) == ("EUR", 2500.0)

    newest = max(sandbox_client.get_managed_case(o["caseId"]).date_created for o in created.values())
    _wait_until(newest + CLOCK_TOLERANCE)  # a rerun within the skew allowance would count as "created"
    second = run_dag("test_refer_invoices", conf={"records": records, "tag": case_tag})

    again = second.xcom("refer")
    assert [o["status"] for o in again] == [
        "existing", "existing", "rejected", "rejected", "rejected", "existing", "rejected"
    ]
    assert {o["recordKey"]: o["caseId"] for o in again if o["caseId"]} == {k: o["caseId"] for k, o in created.items()}
    assert managed_case_count(sandbox_client) == before + 3
