"""The example DAGs, each run with ``dag.test()`` on the migrated DB against a real sandbox and a SQLite CRM.

The runs happen once per module, in the order an agency would see them: extract, referral, the
same referral again (a retry of the whole run), and the integration-test loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from local_airflow import connection_env, connections

from debitura_provider.api import DebituraClient
from debitura_provider.api.errors import NotFoundError
from tests.fixtures.example_dags import ExampleSetup

# The module's runs fixture runs five example DAG runs with dag.test(): past the 300 s default when the machine is busy.
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(900)]

EXAMPLE_DAGS = ("debitura_crm_extract", "debitura_referral", "debitura_integration_test")
INVALID = {
    "INV-10007": "debtor.stateAlpha2",
    "INV-10011": "debtor.countryAlpha2",
    "INV-10014": "currencyCode",
    "INV-10016": "amountToRecover",
    "INV-10018": "dueDate",
    "INV-10019": "debtor.contactPerson",
}
NO_PARTNER = {"INV-10026", "INV-10027"}  # debtors in Japan and Mexico: no partner covers them
EXTRACTED = 23


@dataclass
class Runs:
    runs: dict[str, list[Any]]
    ledgers: list[list[dict[str, Any]]]
    rejections: list[dict[str, Any]]
    client: DebituraClient
    refused_run: Any


def _crm_state() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from agency_crm.db import rows, transaction

    with transaction() as connection:
        ledger = rows(connection, "SELECT * FROM referral_ledger ORDER BY record_key")
        rejections = rows(connection, "SELECT * FROM rejections ORDER BY record_key, field")
    return ledger, rejections


@pytest.fixture(scope="module")
def runs(example_setup: ExampleSetup, airflow_dags: dict[str, Any]) -> Any:
    done: dict[str, list[Any]] = {dag_id: [] for dag_id in EXAMPLE_DAGS}
    ledgers = []
    done["debitura_crm_extract"].append(airflow_dags["debitura_crm_extract"].test())
    for _ in range(2):
        done["debitura_referral"].append(airflow_dags["debitura_referral"].test())
        ledger, rejections = _crm_state()
        ledgers.append(ledger)
    done["debitura_integration_test"].append(airflow_dags["debitura_integration_test"].test())
    sandbox = example_setup.sandbox
    with pytest.MonkeyPatch.context() as patch:  # the same referral once more, with a key Debitura refuses
        refused = connections(sandbox.base_url, "not-the-key", sandbox.portal_url, example_setup.crm_path)
        patch.setenv("AIRFLOW_CONN_DEBITURA_DEFAULT", connection_env(refused)["AIRFLOW_CONN_DEBITURA_DEFAULT"])
        refused_run = airflow_dags["debitura_referral"].test()
    ledgers.append(_crm_state()[0])
    with DebituraClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        yield Runs(done, ledgers, rejections, client, refused_run)


def _states(dag_run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in dag_run.get_task_instances()}


@pytest.mark.parametrize("dag_id", EXAMPLE_DAGS)
def test_every_example_dag_run_succeeds(runs: Runs, dag_id: str) -> None:
    for dag_run in runs.runs[dag_id]:
        assert str(dag_run.state) == "success", _states(dag_run)


def test_extract_publishes_the_batch_as_an_asset_event(runs: Runs) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    (extract,) = runs.runs["debitura_crm_extract"]
    with create_session() as session:
        events = session.execute(
            select(AssetEvent.extra, AssetModel.name)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == "debitura_crm_extract", AssetEvent.source_run_id == extract.run_id)
        ).all()
    assert [(extra, name) for extra, name in events] == [
        ({"batch_id": extract.run_id, "records": EXTRACTED}, "crm_overdue_invoices")
    ]


def test_every_record_ends_in_one_stated_outcome(runs: Runs) -> None:
    ledger = runs.ledgers[0]
    assert len(ledger) == EXTRACTED
    by_key = {row["record_key"]: row for row in ledger}
    assert {k for k, row in by_key.items() if row["status"] == "invalid"} == set(INVALID)
    assert {k for k, row in by_key.items() if row["status"] == "rejected"} == NO_PARTNER
    referred = [row for row in ledger if row["status"] == "created"]
    assert len(referred) == EXTRACTED - len(INVALID) - len(NO_PARTNER)
    assert all(row["case_id"] and row["case_reference"] and row["lifecycle"] for row in referred)
    assert "NoPartnerAvailable" in by_key["INV-10026"]["reason"]


def test_invalid_records_are_rejected_field_by_field_without_failing_the_run(runs: Runs) -> None:
    fields = {(r["record_key"], r["field"]) for r in runs.rejections if r["stage"] == "check"}
    assert fields == set(INVALID.items())
    api = {r["record_key"] for r in runs.rejections if r["stage"] == "debitura"}
    assert api == NO_PARTNER


def test_the_wait_ends_with_money_collected_and_the_timeline_read(runs: Runs) -> None:
    paid = [row for row in runs.ledgers[0] if row["amount_collected"] and row["amount_collected"] > 0]
    assert paid
    assert all(row["last_payment_date"] for row in paid)
    assert any(row["last_event"] for row in paid)
    first_run = runs.runs["debitura_referral"][0]
    assert first_run.get_task_instance("wait_for_payment").xcom_pull(task_ids="wait_for_payment")["satisfied"]


def test_running_the_referral_again_creates_no_case_and_no_ledger_row_twice(runs: Runs) -> None:
    first, second = runs.ledgers[:2]
    assert [row["record_key"] for row in second] == [row["record_key"] for row in first]
    assert {row["record_key"]: row["case_id"] for row in second} == {row["record_key"]: row["case_id"] for row in first}
    assert {row["status"] for row in second if row["case_id"]} == {"created"}  # the same referral, still
    production = [case for case in runs.client.iter_managed_cases() if not case.is_test_case]
    assert len(production) == len([row for row in first if row["case_id"]])


def test_a_failed_step_fails_the_run_but_the_ledger_keeps_every_case(runs: Runs) -> None:
    states = _states(runs.refused_run)
    assert str(runs.refused_run.state) == "failed"
    assert states["refer_invoices[-1]"] == "failed"
    assert states["record_outcomes[-1]"] == "success"
    assert states["fail_run_if_a_step_failed[-1]"] == "failed"
    before, after = ({row["record_key"]: {**row, "updated_at": None} for row in ledger} for ledger in runs.ledgers[1:])
    assert {key: after[key] for key, row in before.items() if row["case_id"]} == {
        key: row for key, row in before.items() if row["case_id"]
    }
    assert {key for key, row in after.items() if row["status"] == "failed"} == NO_PARTNER
    assert all("401" in after[key]["reason"] for key in NO_PARTNER)


def test_integration_test_loop_cleans_its_test_cases_up(runs: Runs) -> None:
    (run,) = runs.runs["debitura_integration_test"]
    verdict = run.get_task_instance("verify").xcom_pull(task_ids="verify")
    assert verdict["timelineItems"] > 0
    with pytest.raises(NotFoundError):
        runs.client.get_managed_case(verdict["caseId"])


def test_every_task_result_can_be_passed_downstream(runs: Runs) -> None:
    """Each XCom deserializes with Airflow's default allow list, and is plain JSON."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from tests.fixtures.compat import serde

    run_ids = [dag_run.run_id for dag_runs in runs.runs.values() for dag_run in dag_runs] + [runs.refused_run.run_id]
    with create_session() as session:
        stored = session.execute(
            select(XComModel.dag_id, XComModel.task_id, XComModel.key, XComModel.value).where(
                XComModel.dag_id.in_(EXAMPLE_DAGS), XComModel.run_id.in_(run_ids)
            )
        ).all()
    tasks = {(dag_id, task_id) for dag_id, task_id, _, _ in stored}
    assert len(tasks) >= 15
    for dag_id, task_id, key, value in stored:
        loaded = serde.deserialize(value)
        assert json.loads(json.dumps(loaded)) == loaded, f"{dag_id}.{task_id} [{key}] is not plain JSON"
