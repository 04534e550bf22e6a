"""DAGs that exist only to run the provider's operators and sensor under real Airflow in tests.

Inputs come from ``dag_run.conf`` through Jinja (``render_template_as_native_obj``), as a DAG
author would pass them. A few subclasses stage what a test needs to happen at an exact moment:
a worker dying right after a write, or a payment arriving right after the sensor's first look.
They call the real operators; only the staging is theirs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Context, dag, task

from debitura_provider.api.models import TestPaymentResponse
from debitura_provider.compat import AirflowException
from debitura_provider.operators.managed_cases import (
    CreateManagedCaseOperator,
    FetchTimelineOperator,
    RecordTestPaymentOperator,
    ReferInvoicesOperator,
)
from debitura_provider.sensors.managed_cases import ManagedCaseSensor

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
RETRY_AT_ONCE = {"retries": 1, "retry_delay": dt.timedelta(0)}
CONF = "{{ dag_run.conf[%r] }}"


class DiesAfterCreating(CreateManagedCaseOperator):
    """The worker dies after the case was created, before the task could report it."""

    def execute(self, context: Context) -> dict[str, Any]:
        case = super().execute(context)
        if context["ti"].try_number == 1:
            raise AirflowException(f"simulated worker crash after creating {case['id']}")
        return case


class LosesFirstAnswer(RecordTestPaymentOperator):
    """The payment is recorded, but its answer never reaches the first try."""

    def _send(self, client: Any, case_id: str, body: dict[str, Any]) -> TestPaymentResponse:
        response = super()._send(client, case_id, body)
        if self._try_number == 1:
            raise AirflowException("simulated lost response after the payment was recorded")
        return response

    def execute(self, context: Context) -> dict[str, Any]:
        self._try_number = context["ti"].try_number
        return super().execute(context)


class DiesAfterPaying(RecordTestPaymentOperator):
    """The worker dies after the payment and its answer were recorded, before the task finished."""

    def execute(self, context: Context) -> dict[str, Any]:
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise AirflowException(f"simulated worker crash after payment {result['paymentId']}")
        return result


class ActsAfterFirstLook(ManagedCaseSensor):
    """Makes the awaited event happen right after the sensor's first unsatisfied look.

    ``dag_run.conf["act"]``: ``{"pay": amount}`` records a test payment on each watched case that
    has none; ``{"advance": "Active"}`` advances each case. Deferred, it acts just before deferring,
    so the trigger has to notice what the first look could not have seen.
    """

    def execute(self, context: Context) -> Any:
        self._context = context
        return super().execute(context)

    def poke(self, context: Context) -> Any:
        result = super().poke(context)
        if not result:
            self._act(context)
        return result

    def defer(self, **kwargs: Any) -> Any:
        self._act(self._context)
        super().defer(**kwargs)

    def _act(self, context: Context) -> None:
        act = context["dag_run"].conf.get("act") or {}
        client = self.hook.get_client()  # the sensor's own client: a test counts the clients of a try
        case_ids = context["dag_run"].conf["case_ids"]
        for case_id in [case_ids] if isinstance(case_ids, str) else case_ids:
            if "pay" in act and not client.get_managed_case_payments(case_id):
                client.record_test_payment(case_id, {"date": dt.date.today().isoformat(), "paymentAmount": act["pay"]})
            if "advance" in act:
                client.advance_test_case(case_id, {"to": act["advance"]})


def _dag(dag_id: str, **kwargs: Any) -> Any:
    return dag(
        dag_id=dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        render_template_as_native_obj=True,
        tags=["debitura-tests"],
        **kwargs,
    )


@_dag("test_create_case", default_args=RETRY_AT_ONCE)
def create_case() -> None:
    @task
    def debtor() -> dict[str, Any]:
        return {
            "type": "Company",
            "name": "Harbor Imports LLC",
            "contactPerson": "Jane Doe",
            "countryAlpha2": "US",
            "stateAlpha2": "CA",
        }

    created = DiesAfterCreating(
        task_id="create",
        case={
            "creditorCompanyName": CONF % "creditor",
            "creditorCountryAlpha2": "DK",
            "currencyCode": "USD",
            "amountToRecover": CONF % "amount",
            "date": CONF % "date",
            "debtor": debtor(),
            "isTest": True,
            "tag": CONF % "tag",
        },
    )

    @task
    def read_downstream(case: dict[str, Any]) -> dict[str, Any]:
        return {"id": case["id"], "isTestCase": case["isTestCase"], "remainder": case["remainder"]}

    read_downstream(created.output)


@_dag("test_create_case_invalid", default_args=RETRY_AT_ONCE)
def create_case_invalid() -> None:
    CreateManagedCaseOperator(task_id="create", case=CONF % "case")


@_dag("test_fetch_timeline")
def fetch_timeline() -> None:
    FetchTimelineOperator(task_id="timeline", case_id=CONF % "case_id", since="{{ dag_run.conf.get('since') }}")


@_dag("test_record_payment", default_args=RETRY_AT_ONCE)
def record_payment() -> None:
    LosesFirstAnswer(task_id="pay", case_id=CONF % "case_id", amount=CONF % "amount")


@_dag("test_record_payment_crash", default_args=RETRY_AT_ONCE)
def record_payment_crash() -> None:
    DiesAfterPaying(task_id="pay", case_id=CONF % "case_id", amount=CONF % "amount")


@_dag("test_record_payment_production")
def record_payment_production() -> None:
    RecordTestPaymentOperator(task_id="pay", case_id=CONF % "case_id", amount=10)


@_dag("test_refer_invoices", default_args=RETRY_AT_ONCE)
def refer_invoices() -> None:
    outcomes = ReferInvoicesOperator(
        task_id="refer",
        records=CONF % "records",
        is_test=True,
        tag=CONF % "tag",
        max_concurrency=4,
        known_cases="{{ dag_run.conf.get('known_cases') }}",
    ).output

    @task
    def count(outcomes: list[dict[str, Any]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        return counts

    count(outcomes)


def _watch(dag_id: str, **sensor: Any) -> None:
    @_dag(dag_id)
    def watch() -> None:
        seen = ActsAfterFirstLook(task_id="watch", case_ids=CONF % "case_ids", **sensor)

        @task
        def satisfied(result: dict[str, Any]) -> list[str]:
            return result["satisfied"]

        satisfied(seen.output)

    watch()


_watch("test_watch_poke", condition="new_payment", mode="poke", poke_interval=0.1, timeout=60)
_watch("test_watch_reschedule", condition="lifecycle_changed", mode="reschedule", poke_interval=0.1, timeout=60)
_watch("test_watch_deferrable", condition="new_payment", deferrable=True, poke_interval=0.1, timeout=60)
_watch(
    "test_watch_deferrable_timeout",
    condition="lifecycle_in",
    lifecycles=["Closed"],
    deferrable=True,
    poke_interval=0.1,
    timeout=2,
)

create_case()
create_case_invalid()
fetch_timeline()
record_payment()
record_payment_crash()
record_payment_production()
refer_invoices()
