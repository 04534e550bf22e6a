"""The sensor in its three modes under real Airflow, against the sandbox over HTTP.

The DAGs' sensor makes the awaited event happen right after its first unsatisfied look (see
tests/airflow_layer/dags/provider_tasks.py), so each run proves a change was noticed, not just
found on arrival.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from airflow.models.taskreschedule import TaskReschedule
from airflow.utils.session import create_session
from sqlalchemy import func, select

from debitura_provider.api import DebituraClient
from debitura_provider.sensors.managed_cases import ManagedCaseSensor
from tests.airflow_layer.cases import test_case

pytestmark = pytest.mark.airflow


def test_poke_mode_sees_a_new_payment(run_dag: Any, sandbox_client: DebituraClient, case_tag: str) -> None:
    case_id = test_case(sandbox_client, case_tag)

    run = run_dag("test_watch_poke", conf={"case_ids": [case_id], "act": {"pay": 12.5}})

    assert run.states == {"watch": "success", "satisfied": "success"}
    result = run.xcom("watch")
    paid = sandbox_client.get_managed_case_payments(case_id)
    assert result["satisfied"] == [case_id]
    assert [p["id"] for p in result["payments"][case_id]] == [str(paid[0].id)]
    assert Decimal(result["cases"][0]["remainder"]) == Decimal("87.5")
    assert run.xcom("watch", key="debitura_case_url").endswith(f"/cases/{case_id}")


def test_reschedule_mode_keeps_its_baseline_between_pokes(
    run_dag: Any, sandbox_client: DebituraClient, case_tag: str
) -> None:
    case_id = test_case(sandbox_client, case_tag, active=False)

    run = run_dag("test_watch_reschedule", conf={"case_ids": case_id, "act": {"advance": "Active"}})

    assert run.states == {"watch": "success", "satisfied": "success"}
    assert run.xcom("satisfied") == [case_id]
    assert run.xcom("watch")["cases"][0]["lifecycle"] == "Active"
    assert run.xcom("watch")["payments"] == {}
    with create_session() as session:
        rescheduled = session.scalar(
            select(func.count()).select_from(TaskReschedule).where(TaskReschedule.ti_id == run.ti("watch").id)
        )
    assert rescheduled >= 1


def test_deferred_sensor_waits_for_every_case(run_dag: Any, sandbox_client: DebituraClient, case_tag: str) -> None:
    case_ids = [test_case(sandbox_client, case_tag) for _ in range(2)]

    run = run_dag("test_watch_deferrable", conf={"case_ids": case_ids, "act": {"pay": 100}})

    assert run.states == {"watch": "success", "satisfied": "success"}
    result = run.xcom("watch")
    assert result["satisfied"] == case_ids
    assert sorted(result["payments"]) == sorted(case_ids)
    assert [Decimal(c["remainder"]) for c in result["cases"]] == [0, 0]


def test_deferred_sensor_times_out_as_a_sensor(run_dag: Any, sandbox_client: DebituraClient, case_tag: str) -> None:
    case_id = test_case(sandbox_client, case_tag)

    run = run_dag("test_watch_deferrable_timeout", conf={"case_ids": [case_id]})

    assert run.states == {"watch": "failed", "satisfied": "upstream_failed"}


@pytest.mark.parametrize(
    ("event", "raised"),
    [
        (None, "without a valid trigger event"),
        ({"status": "mystery"}, "unknown status 'mystery'"),
        ({"status": "error", "message": "Debitura answered 401"}, "Debitura answered 401"),
        ({"status": "timeout", "message": "Sensor timed out: 0 of 1"}, "0 of 1"),
    ],
)
def test_resuming_checks_the_event(event: Any, raised: str) -> None:
    from debitura_provider.compat import AirflowException, AirflowFailException, AirflowSensorTimeout

    sensor = ManagedCaseSensor(task_id="watch", case_ids="x", condition="new_payment", deferrable=True)
    expected = {"error": AirflowFailException, "timeout": AirflowSensorTimeout}.get(
        (event or {}).get("status", ""), AirflowException
    )
    with pytest.raises(expected, match=raised):
        sensor.execute_complete({}, event)  # type: ignore[arg-type]


def test_a_bad_condition_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="remainder_at_most"):
        ManagedCaseSensor(task_id="watch", case_ids="x", condition="remainder_at_most")


def test_start_from_trigger_needs_a_deferrable_sensor_and_literal_known_payments() -> None:
    with pytest.raises(ValueError, match="deferrable=True"):
        ManagedCaseSensor(task_id="watch", case_ids="x", condition="new_payment", start_from_trigger=True)
    with pytest.raises(ValueError, match="known_payment_ids as a list"):
        ManagedCaseSensor(
            task_id="watch",
            case_ids="x",
            condition="new_payment",
            deferrable=True,
            start_from_trigger=True,
            known_payment_ids="{{ params.known }}",
        )
