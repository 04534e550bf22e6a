"""The collection agency's side of the example DAGs: its CRM database and what the DAGs keep in it.

Not a DAG module (``.airflowignore`` skips this folder); the DAG files import it because Airflow puts
the DAG folder on ``sys.path``. Everything goes through one Airflow connection, ``debitura_crm``:
a SQLite file by default, PostgreSQL by pointing the connection elsewhere (only portable SQL is used).
"""

from __future__ import annotations

from airflow.sdk import Asset

CRM_CONN_ID = "debitura_crm"
"""Airflow connection of the agency's CRM database."""

OVERDUE_INVOICES = Asset(name="crm_overdue_invoices", uri="x-agency-crm://debitura_crm/overdue_invoices")
"""Published by ``debitura_crm_extract`` for each extract batch; ``extra = {"batch_id", "records"}``.

The rows themselves stay in the CRM database (``extract_rows``), so the event stays small.
"""
