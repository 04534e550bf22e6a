"""The agency's daily CRM extract: overdue invoices it cannot collect itself, published as an Asset.

Reads the CRM through the ``debitura_crm`` connection, stores the batch in ``extract_rows`` and
emits an event on the ``crm_overdue_invoices`` asset with ``extra = {"batch_id", "records"}``.
The ``debitura_referral`` DAG is scheduled on that asset. With nothing to refer, the task skips
and no event is emitted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from agency_crm import CRM_CONN_ID, OVERDUE_INVOICES
from agency_crm.db import ensure_schema, transaction
from agency_crm.extract import overdue_invoices, save_batch
from airflow.sdk import Param, dag, task

from debitura_provider.compat import AirflowSkipException


@dag(
    dag_id="debitura_crm_extract",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["debitura", "example"],
    params={
        "min_days_overdue": Param(30, type="integer", minimum=0, description="Refer invoices overdue this long."),
    },
    doc_md=__doc__,
)
def debitura_crm_extract() -> None:
    @task(outlets=[OVERDUE_INVOICES], retries=2)
    def extract_overdue_invoices(params: dict[str, Any], run_id: str, outlet_events: Any) -> dict[str, Any]:
        """Select the invoices to refer and store them as the batch named after this run."""
        with transaction(CRM_CONN_ID) as connection:
            ensure_schema(connection)
            records = overdue_invoices(connection, dt.date.today(), int(params["min_days_overdue"]))
            if not records:
                raise AirflowSkipException("No overdue invoices to refer.")
            save_batch(connection, run_id, records)
        batch = {"batch_id": run_id, "records": len(records)}
        outlet_events[OVERDUE_INVOICES].extra = batch
        return batch

    extract_overdue_invoices()


debitura_crm_extract()
