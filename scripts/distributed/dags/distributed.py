"""The DAGs ``make test-distributed`` runs on CeleryExecutor (scripts/distributed/run.py triggers them).

* ``debitura_distributed_referral``: N synthetic test records split into chunks, each chunk referred
  by one mapped ``ReferInvoicesOperator`` in the ``debitura`` pool, so the chunks land on different
  Celery workers; retries on, so a chunk whose worker is killed is referred again elsewhere (the
  Idempotency-Key of each record makes that return the first case).
* ``debitura_distributed_sensors``: one deferred ``ManagedCaseSensor`` per case id given in the
  run's conf, each waiting for a new payment, spread over the triggerers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, task

from bench.referral import make_records
from debitura_provider.operators.referral import ReferInvoicesOperator
from debitura_provider.sensors.managed_cases import ManagedCaseSensor

POOL = "debitura"
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@dag(
    dag_id="debitura_distributed_referral",
    schedule=None,
    start_date=START,
    catchup=False,
    params={
        "records": Param(5000, type="integer"),
        "chunks": Param(6, type="integer"),
        "prefix": Param("dist", type="string"),
    },
    tags=["debitura", "distributed-test"],
)
def debitura_distributed_referral() -> None:
    @task
    def chunks(params: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """Synthetic test records (isTest, the sandbox's fake debtors), in ``chunks`` parts."""
        records = make_records(params["prefix"], params["records"])
        n = params["chunks"]
        return [records[i::n] for i in range(n)]

    ReferInvoicesOperator.partial(
        task_id="refer_invoices",
        record_key="record_id",
        pool=POOL,
        retries=3,
        retry_delay=dt.timedelta(seconds=5),
    ).expand(records=chunks())


@dag(
    dag_id="debitura_distributed_sensors",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"case_ids": Param([], type="array")},
    max_active_tasks=1000,
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
        retries=2,
        retry_delay=dt.timedelta(seconds=5),
    ).expand(case_ids=one_case_each())


debitura_distributed_referral()
debitura_distributed_sensors()
