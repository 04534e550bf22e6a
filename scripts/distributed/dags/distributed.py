"""The DAGs ``make test-distributed`` runs on CeleryExecutor (scripts/distributed/run.py triggers them).

* ``debitura_distributed_referral``: the records of the CRM table ``dist_records`` (connection
  ``dist_crm``, written by the run script), one mapped ``ReferInvoicesOperator`` per ``chunk``, in the
  ``debitura`` pool, so the chunks land on different Celery workers. Each reads its records at run
  time (``records_sql``: they never enter XCom). Retries on, so a chunk whose worker is killed is
  referred again elsewhere (each record's Idempotency-Key makes that return the first case).
* ``debitura_distributed_sensors``: ``SENSORS_PER_RUN`` deferred ``ManagedCaseSensor`` tasks, one
  per case id of the run's conf, each waiting for a new payment. On Airflow 3.3+ they start from
  the trigger and end there (``start_from_trigger``, ``end_from_trigger``): the scheduler hands each
  straight to a triggerer, which renders its ``case_ids`` template, and the trigger marks it done,
  so no sensor takes a Celery worker slot. Airflow does not start mapped tasks from the triggerer
  (they would each start on a worker first), hence one task per sensor and several runs.
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
SENSORS_PER_RUN = 50
"""Sensor tasks of one ``debitura_distributed_sensors`` run (the run script triggers as many runs as it needs)."""


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
    max_active_tasks=SENSORS_PER_RUN,
    default_args=RETRIES,
    tags=["debitura", "distributed-test"],
)
def debitura_distributed_sensors() -> None:
    for n in range(SENSORS_PER_RUN):
        ManagedCaseSensor(
            task_id=f"wait_for_payment_{n:03d}",
            case_ids=f"{{{{ params.case_ids[{n}] }}}}",
            condition="new_payment",
            deferrable=True,
            start_from_trigger=True,  # before Airflow 3.3: started on a worker
            end_from_trigger=True,
            poke_interval=5,
            timeout=1800,
        )


debitura_distributed_referral()
debitura_distributed_sensors()
