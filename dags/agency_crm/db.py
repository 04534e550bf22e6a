"""Connection to the CRM database and the tables in it.

SQL goes through SQLAlchemy with named parameters on the engine of the connection's DbApiHook,
so the same statements run on SQLite and PostgreSQL. Tables are created with ``IF NOT EXISTS``:
every DAG run may call :func:`ensure_schema` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook
from sqlalchemy import text
from sqlalchemy.engine import Connection  # not in sqlalchemy's top level before 2.0 (Airflow 3.0 has 1.4)

from agency_crm import CRM_CONN_ID
from debitura_provider.compat import BaseHook

CRM_TABLES = (
    """CREATE TABLE IF NOT EXISTS clients (
        client_id VARCHAR(32) PRIMARY KEY,
        company_name VARCHAR(200) NOT NULL,
        country_alpha2 VARCHAR(8),
        account_manager VARCHAR(100)
    )""",
    """CREATE TABLE IF NOT EXISTS debtors (
        debtor_id VARCHAR(32) PRIMARY KEY,
        debtor_type VARCHAR(16) NOT NULL,
        name VARCHAR(200) NOT NULL,
        contact_person VARCHAR(200),
        registration_number VARCHAR(64),
        address VARCHAR(300),
        zip_code VARCHAR(32),
        city VARCHAR(100),
        state_code VARCHAR(64),
        country_alpha2 VARCHAR(8),
        email VARCHAR(200),
        phone VARCHAR(64)
    )""",
    """CREATE TABLE IF NOT EXISTS invoices (
        invoice_id VARCHAR(32) PRIMARY KEY,
        client_id VARCHAR(32) NOT NULL REFERENCES clients (client_id),
        debtor_id VARCHAR(32) NOT NULL REFERENCES debtors (debtor_id),
        invoice_number VARCHAR(64) NOT NULL,
        currency VARCHAR(8),
        amount_due NUMERIC(14, 2),
        issue_date DATE,
        due_date DATE,
        description VARCHAR(4000),
        collection_notes VARCHAR(4000),
        status VARCHAR(16) NOT NULL DEFAULT 'open'
    )""",
    """CREATE TABLE IF NOT EXISTS agency_coverage (
        country_alpha2 VARCHAR(8) PRIMARY KEY,
        note VARCHAR(200)
    )""",
)
"""The agency's CRM: its clients (the creditors), their debtors and invoices, and where it collects itself."""

PIPELINE_TABLES = (
    """CREATE TABLE IF NOT EXISTS extract_batches (
        batch_id VARCHAR(250) PRIMARY KEY,
        extracted_at VARCHAR(40) NOT NULL,
        record_count INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS extract_rows (
        batch_id VARCHAR(250) NOT NULL,
        record_key VARCHAR(64) NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (batch_id, record_key)
    )""",
    """CREATE TABLE IF NOT EXISTS rejections (
        record_key VARCHAR(64) NOT NULL,
        field VARCHAR(200) NOT NULL,
        batch_id VARCHAR(250) NOT NULL,
        stage VARCHAR(16) NOT NULL,
        reason TEXT NOT NULL,
        rejected_at VARCHAR(40) NOT NULL,
        PRIMARY KEY (record_key, field)
    )""",
    """CREATE TABLE IF NOT EXISTS referral_ledger (
        record_key VARCHAR(64) PRIMARY KEY,
        batch_id VARCHAR(250) NOT NULL,
        status VARCHAR(16) NOT NULL,
        reason TEXT,
        case_id VARCHAR(40),
        case_reference VARCHAR(40),
        lifecycle VARCHAR(64),
        close_code VARCHAR(64),
        currency VARCHAR(8),
        amount_referred NUMERIC(14, 2),
        remainder NUMERIC(14, 2),
        amount_collected NUMERIC(14, 2),
        last_payment_date VARCHAR(40),
        last_event VARCHAR(400),
        updated_at VARCHAR(40) NOT NULL
    )""",
)
"""What the DAGs keep: extract batches, rejected records and one ledger row per referred invoice."""


def crm_hook(conn_id: str = CRM_CONN_ID) -> DbApiHook:
    """The connection's SQL hook (``SqliteHook``, ``PostgresHook`` …), refusing non-SQL connections."""
    hook = BaseHook.get_hook(conn_id)
    if not isinstance(hook, DbApiHook):
        raise TypeError(f"connection {conn_id!r} must be a SQL database connection, got {type(hook).__name__}")
    return hook


@contextmanager
def transaction(conn_id: str = CRM_CONN_ID) -> Iterator[Connection]:
    """One transaction on the CRM database: committed on success, rolled back on error."""
    engine = crm_hook(conn_id).get_sqlalchemy_engine()
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def ensure_schema(connection: Connection) -> None:
    """Create any missing table; existing tables and rows are left alone."""
    for statement in (*CRM_TABLES, *PIPELINE_TABLES):
        connection.execute(text(statement))


def rows(connection: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of a query as plain dicts."""
    return [dict(row) for row in connection.execute(text(sql), params).mappings()]
