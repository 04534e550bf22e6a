"""The DAGs ``make test-distributed`` runs on CeleryExecutor (scripts/distributed/run.py triggers them).

* ``debitura_distributed_referral``: the records of the CRM table ``dist_records`` (connection
  ``dist_crm``, written by the run script), one mapped ``ReferInvoicesOperator`` per ``chunk``, in the
  ``debitura`` pool, so the chunks land on different Celery workers. Each reads its records at run
  time (``records_sql``: they never enter XCom). Retries on, so a chunk whose worker is killed is
  referred again elsewhere (each record's Idempotency-Key makes that return the first case).
* ``debitura_distributed_sensors``: one deferred ``ManagedCaseSensor`` per case id given in the
  run's conf, each waiting for a new payment, spread over the triggerers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, task

from debitura_provider.operators.referral import ReferInvoicesOperator
from debitura_provider.sensors.managed_cases import ManagedCaseSensor

POOL = "debitura"
CRM_CONN_ID = "dist_crm"
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
RETRIES = {"retries": 3, "retry_delay": dt.timedelta(seconds=5)}
"""Every task: a killed worker's task, or one refused by an overloaded API server, runs again."""


@dag(
    dag_id="debitura_distributed_referral",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"chunks": Param(6, type="integer")},
    default_args=RETRIES,
    tags=["debitura", "distributed-test"],
)
def debitura_distributed_referral() -> None:
    @task
    def chunks(params: dict[str, Any]) -> list[dict[str, int]]:
        return [{"chunk": n} for n in range(params["chunks"])]

    ReferInvoicesOperator.partial(
        task_id="refer_invoices",
        records_sql="SELECT record_key, payload FROM dist_records WHERE chunk = :chunk ORDER BY record_key",
        records_conn_id=CRM_CONN_ID,
        records_json_column="payload",
        record_key="record_key",
        pool=POOL,
    ).expand(records_parameters=chunks())


@dag(
    dag_id="debitura_distributed_sensors",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"case_ids": Param([], type="array")},
    max_active_tasks=1000,
    default_args=RETRIES,
    tags=["debitura", "distributed-test"],
)
def debitura_distributed_sensors() -> None:
    @task
    def one_case_each(params: dict[str, Any]) -> list[list[str]]:
        return [[case_id] for case_id in params["case_ids"]]

    ManagedCaseSensor.partial(
        task_id="wait_for_payment",
        condition="new_payment",
        deferrable=True,
        poke_interval=5,
        timeout=1800,
    ).expand(case_ids=one_case_each())


debitura_distributed_referral()
debitura_distributed_sensors()
