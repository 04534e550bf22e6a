"""The managing side's copies of its referred cases' files and chats, kept up to date daily.

As a managing partner the agency may read, not change, what the collection partner attaches to a
case and writes in its chat. This DAG copies both into the agency's own systems, for its client
file and its case handlers:

- ``sync_files``: each referred case's files into object storage, under ``case-files/`` of the
  DAGs' artifact base (``agency_crm.artifacts``: the Variable ``debitura_artifacts_url``, else
  ``DEBITURA_ARTIFACTS_URL``, else ``file://<AIRFLOW_HOME>/debitura``), with a manifest of hashes;
- ``sync_chats``: each referred case's chat messages into the CRM's ``case_chat_messages`` table.

Both are incremental: a file already stored with the same hash is not downloaded again, a message
already in the table is not inserted again, so a run costs one list request per case and item
when nothing changed. Only case ids and counts pass through XCom: file names and messages may name
the debtor and stay in the agency's storage and CRM.
"""

from __future__ import annotations

import datetime as dt
import os

from agency_crm import CRM_CONN_ID
from agency_crm.artifacts import CONN_ENV, artifacts_base
from agency_crm.artifacts import VARIABLE as ARTIFACTS_VARIABLE
from agency_crm.db import ensure_schema, rows, transaction
from airflow.sdk import Variable, dag, task

from debitura_provider.operators.case_chats import SyncCaseChatsOperator
from debitura_provider.operators.case_files import SyncCaseFilesOperator

FILES_FOLDER = "case-files"


@dag(
    dag_id="debitura_case_documents",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["debitura", "example"],
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30)},
    doc_md=__doc__,
)
def debitura_case_documents() -> None:
    @task
    def referred_cases() -> list[str]:
        """The cases the referral DAG made (their ids, from the ledger)."""
        with transaction(CRM_CONN_ID) as connection:
            ensure_schema(connection)
            found = rows(connection, "SELECT case_id FROM referral_ledger WHERE case_id IS NOT NULL ORDER BY case_id")
        return [row["case_id"] for row in found]

    @task
    def files_destination() -> str:
        """``case-files/`` under the artifact base, read on the worker that writes."""
        return str(artifacts_base(Variable.get(ARTIFACTS_VARIABLE, default=None)) / FILES_FOLDER)

    cases = referred_cases()
    SyncCaseFilesOperator(
        task_id="sync_files",
        case_ids=cases,
        destination=files_destination(),
        storage_conn_id=os.environ.get(CONN_ENV) or None,
    )
    SyncCaseChatsOperator(task_id="sync_chats", case_ids=cases, sql_conn_id=CRM_CONN_ID)


debitura_case_documents()
