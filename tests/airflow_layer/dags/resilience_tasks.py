"""A DAG for the resilience suite (tests/resilience): the real create operator, retried by Airflow at once."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag

from debitura_provider.operators.managed_cases import CreateManagedCaseOperator


@dag(
    dag_id="test_create_case_retried",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    render_template_as_native_obj=True,
    default_args={"retries": 1, "retry_delay": dt.timedelta(0)},
    tags=["debitura-tests"],
)
def create_case_retried() -> None:
    CreateManagedCaseOperator(task_id="create", case="{{ dag_run.conf['case'] }}")


create_case_retried()
