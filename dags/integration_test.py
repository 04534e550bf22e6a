"""Debitura's recommended integration-test loop, on ``isTest`` cases: safe against production.

1. create a test case, tagged with this run;
2. advance it to Active (``POST /test/cases/{id}/advance``);
3. record a test payment on it;
4. the payment sensor sees the payment;
5. read the timeline, and check that everything agrees;
6. delete every test case carrying the run's tag.

Step 6 is a teardown: it runs whatever happened before it, and a failed check still fails the
run. Test cases never reach a collection partner and are excluded from Debitura's metrics.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from airflow.sdk import dag, task

from debitura_provider.api.money import same_amount
from debitura_provider.compat import AirflowFailException
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.operators.managed_cases import (
    CreateManagedCaseOperator,
    FetchTimelineOperator,
    RecordTestPaymentOperator,
)
from debitura_provider.sensors.managed_cases import ManagedCaseSensor

AMOUNT = 1200.00
PAYMENT = 450.00
CASE_ID = "{{ ti.xcom_pull(task_ids='create_test_case')['id'] }}"


@dag(
    dag_id="debitura_integration_test",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["debitura", "example", "test"],
    default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=5)},
    doc_md=__doc__,
)
def debitura_integration_test() -> None:
    # --8<-- [start:it_create]
    @task
    def test_case(run_id: str) -> dict[str, Any]:
        """The test invoice, tagged with this run so that the teardown finds everything it made."""
        today = dt.date.today()
        return {
            "creditorCompanyName": "Fjord Logistics A/S",
            "creditorCountryAlpha2": "DK",
            "currencyCode": "USD",
            "amountToRecover": AMOUNT,
            "date": (today - dt.timedelta(days=60)).isoformat(),
            "dueDate": (today - dt.timedelta(days=30)).isoformat(),
            "creditorReference": "IT-" + today.strftime("%Y%m%d"),
            "claimDescription": "Integration test invoice (isTest)",
            # A made-up debtor: a test case is data too, and this request lands in XCom and rendered fields.
            "debtor": {
                "type": "Company",
                "name": "Integration Test Debtor Inc.",
                "contactPerson": "Test Contact",
                "countryAlpha2": "US",
                "stateAlpha2": "CA",
            },
            "isTest": True,
            "tag": "airflow-it-" + re.sub(r"[^A-Za-z0-9._-]+", "-", run_id)[:80],
        }

    request = test_case()
    create = CreateManagedCaseOperator(task_id="create_test_case", case=request)
    # --8<-- [end:it_create]

    # --8<-- [start:it_drive]
    @task
    def advance_to_active(case: dict[str, Any]) -> dict[str, Any]:
        """Drive the test case the way Debitura's partner would: accept it, making it Active."""
        result = DebituraHook().get_client().advance_test_case(case["id"], {"to": "Active"})
        return result.model_dump(mode="json", by_alias=True)

    pay = RecordTestPaymentOperator(task_id="record_test_payment", case_id=CASE_ID, amount=PAYMENT)
    sees = ManagedCaseSensor(
        task_id="sensor_sees_payment",
        case_ids=CASE_ID,
        condition="new_payment",
        deferrable=True,
        poke_interval=2,
        timeout=120,
    )
    timeline = FetchTimelineOperator(task_id="fetch_timeline", case_id=CASE_ID)
    # --8<-- [end:it_drive]

    # --8<-- [start:it_verify]
    @task
    def verify(case: dict[str, Any], payment: dict[str, Any], seen: dict[str, Any], items: list[dict]) -> dict:
        """The payment, the sensor and the timeline tell the same story."""
        problems = []
        snapshot = next((c for c in seen["cases"] if c["id"] == case["id"]), {})
        left, seen_left = payment["remainingAmount"], snapshot.get("remainder")
        if seen_left is None or not same_amount(left, seen_left, case.get("currency")):
            problems.append(f"payment left {payment['remainingAmount']}, the case says {snapshot.get('remainder')}")
        if seen["satisfied"] != [case["id"]]:
            problems.append(f"the sensor was satisfied by {seen['satisfied']}, not {case['id']}")
        seen_ids = [p["id"] for p in seen["payments"].get(case["id"], [])]
        if payment["paymentId"] not in seen_ids:
            problems.append(f"the sensor did not report payment {payment['paymentId']} (saw {seen_ids})")
        if not any("payment" in f"{i.get('type')} {i.get('title')}".lower() for i in items):
            problems.append(f"no payment in the timeline: {[i.get('title') for i in items]}")
        if problems:
            raise AirflowFailException("Integration test failed: " + "; ".join(problems))
        return {"caseId": case["id"], "paymentId": payment["paymentId"], "timelineItems": len(items)}

    # --8<-- [end:it_verify]

    # --8<-- [start:it_teardown]
    @task
    def delete_test_cases(case_request: dict[str, Any]) -> str:
        """Hard-delete this run's test cases (idempotent: nothing to delete is fine)."""
        DebituraHook().get_client().delete_test_cases_by_tag(case_request["tag"])
        return case_request["tag"]

    checked = verify(create.output, pay.output, sees.output, timeline.output)
    create >> advance_to_active(create.output) >> pay >> sees >> timeline
    checked >> delete_test_cases(request).as_teardown(setups=request)
    # --8<-- [end:it_teardown]


debitura_integration_test()
