"""``debitura_collection_partner`` run twice on the same bank feed: every match recorded on Debitura once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.roles.conftest import Agency
from tests.roles.support import assign_cases, counts

pytestmark = pytest.mark.airflow

DAG_ID = "debitura_collection_partner"
CONF = {"sample_feed": True, "min_new_cases": 0}


@dataclass
class Runs:
    agency: Agency
    case_ids: list[str]
    runs: list[Any]
    requests: list[Any]
    feed: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]


def _crm(query: str) -> list[dict[str, Any]]:
    from agency_crm.db import rows, transaction

    with transaction() as connection:
        return rows(connection, query)


@pytest.fixture(scope="module")
def feed_runs(agency: Agency, airflow_dags: dict[str, Any]) -> Runs:
    case_ids = assign_cases(agency.managing, agency.collection, 5, amount=1000.0)
    dag = airflow_dags[DAG_ID]
    runs, requests = [], []
    for _ in range(2):
        before = counts(agency.sandbox)
        runs.append(dag.test(run_conf=CONF))
        requests.append(counts(agency.sandbox) - before)
    return Runs(
        agency,
        case_ids,
        runs,
        requests,
        feed=_crm("SELECT * FROM bank_feed ORDER BY feed_row_id"),
        payments=_crm("SELECT * FROM bank_feed_payments ORDER BY feed_row_id"),
        exceptions=_crm("SELECT * FROM bank_feed_exceptions ORDER BY feed_row_id"),
    )


def _states(dag_run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in dag_run.get_task_instances()}


def test_both_runs_succeed(feed_runs: Runs) -> None:
    first, second = feed_runs.runs
    assert str(first.state) == "success", _states(first)
    assert str(second.state) == "success", _states(second)
    assert _states(first)["accept_case[4]"] == "success"
    assert _states(second)["accept_case[-1]"] == "skipped"  # nothing new was assigned


def test_every_feed_line_ends_in_one_stated_outcome(feed_runs: Runs) -> None:
    from agency_crm.bank_feed import SAMPLE_OUTCOMES

    outcome = {row["feed_row_id"]: row["status"] for row in feed_runs.payments}
    outcome.update({row["feed_row_id"]: row["reason_code"] for row in feed_runs.exceptions})
    assert len(feed_runs.feed) == len(SAMPLE_OUTCOMES)
    assert outcome == SAMPLE_OUTCOMES
    assert all(row["reason"] for row in feed_runs.exceptions)


def test_each_match_is_recorded_on_debitura_exactly_once(feed_runs: Runs) -> None:
    agency = feed_runs.agency
    recorded = {row["payment_id"]: row for row in feed_runs.payments}
    on_debitura = {
        str(p.id): case_id for case_id in feed_runs.case_ids for p in agency.collection.get_case_payments(case_id)
    }
    assert set(on_debitura) == set(recorded) and len(recorded) == 4
    assert all(recorded[pid]["case_id"] == case_id for pid, case_id in on_debitura.items())
    first, second = feed_runs.requests
    assert first.matching("POST /cases/{id}/payments") == 4
    assert second.matching("POST /cases/{id}/payments") == 0
    assert second.matching("POST /cases/{id}/start") == 0


def test_the_payments_show_on_the_managing_side(feed_runs: Runs) -> None:
    agency = feed_runs.agency
    first = feed_runs.runs[0].get_task_instance("check_managing_side").xcom_pull(task_ids="check_managing_side")
    assert first == {"cases": 3, "payments": 4, "shownToManagingPartner": 4}
    full = next(row for row in feed_runs.payments if row["close_case"])
    case = agency.managing.get_managed_case(full["case_id"])
    assert (case.lifecycle, case.close_code, float(case.remainder)) == ("Closed", "Paid", 0.0)
    seen = {str(p.id) for case_id in feed_runs.case_ids for p in agency.managing.get_managed_case_payments(case_id)}
    assert seen == {row["payment_id"] for row in feed_runs.payments}


def test_no_payer_data_reaches_xcom(feed_runs: Runs) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run_ids = [run.run_id for run in feed_runs.runs]
    with create_session() as session:
        stored = (
            session.execute(select(XComModel.value).where(XComModel.dag_id == DAG_ID, XComModel.run_id.in_(run_ids)))
            .scalars()
            .all()
        )
    text = json.dumps([str(value) for value in stored])
    assert stored
    for line in feed_runs.feed:
        assert line["payer_name"] not in text
        if " " in line["remittance_info"]:  # more than a bare case reference, which XCom may carry
            assert line["remittance_info"] not in text


def test_a_run_that_died_before_booking_replays_its_payments(feed_runs: Runs, airflow_dags: dict[str, Any]) -> None:
    """Payments recorded but never booked (a crash between the two steps) are sent again under the same
    keys: Debitura replays them, and the CRM gets the same payment ids. Runs last: it reuses the runs above."""
    from agency_crm.db import transaction
    from sqlalchemy import text

    agency = feed_runs.agency
    with transaction() as connection:
        connection.execute(text("UPDATE bank_feed_payments SET status = 'pending', payment_id = NULL"))
    before = counts(agency.sandbox)

    run = airflow_dags[DAG_ID].test(run_conf=CONF)

    assert str(run.state) == "success", _states(run)
    requests = counts(agency.sandbox) - before
    assert requests.matching("POST /cases/{id}/payments") == 4  # sent again ...
    rebooked = _crm("SELECT * FROM bank_feed_payments ORDER BY feed_row_id")
    assert [(r["feed_row_id"], r["payment_id"], r["status"]) for r in rebooked] == [
        (r["feed_row_id"], r["payment_id"], "recorded") for r in feed_runs.payments
    ]
    on_debitura = [p for case_id in feed_runs.case_ids for p in agency.collection.get_case_payments(case_id)]
    assert len(on_debitura) == 4  # ... and recorded once
