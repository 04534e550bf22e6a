"""Writing a webhook signing secret into an Airflow connection, where the receiver reads it.

Only the metadata DB can be written. A connection defined in an ``AIRFLOW_CONN_*`` variable or a
secrets backend would hide what is written there, so that is refused before Debitura issues a
secret (which it shows only once), and checked again by reading the secret back.
"""

from __future__ import annotations

import json
import os

from sqlalchemy.exc import SQLAlchemyError

from debitura_provider import connection_extra
from debitura_provider.api.errors import SecretStoreError
from debitura_provider.hooks.debitura import WEBHOOK_SECRET_FIELD


def check_writable(conn_id: str) -> None:
    """Refuse a connection that lives outside the metadata DB (or is shadowed by an env variable)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from debitura_provider.compat import AirflowNotFoundException

    if os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
        raise SecretStoreError(_elsewhere(conn_id, "an AIRFLOW_CONN_ environment variable"))
    try:
        with create_session() as session:
            in_db = session.scalar(select(Connection.id).where(Connection.conn_id == conn_id)) is not None
    except SQLAlchemyError as exc:
        raise SecretStoreError(
            f"cannot read the Airflow metadata database ({type(exc).__name__}); run this where the airflow CLI runs"
        ) from None
    if in_db:
        return
    try:
        Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return
    raise SecretStoreError(_elsewhere(conn_id, "a secrets backend"))


def store_secret(conn_id: str, secret: str) -> None:
    """Put ``secret`` in the connection's ``webhook_secret`` field, creating the connection if needed."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    try:
        with create_session() as session:
            conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
            if conn is None:
                conn = Connection(
                    conn_id=conn_id,
                    conn_type="debitura",
                    description="Debitura webhook signing secret (written by debitura-webhooks)",
                )
                session.add(conn)
            # Every field present, so that Airflow's Edit form shows them all (see connection_extra).
            extra = {**connection_extra(), **(conn.extra_dejson if conn.extra else {}), WEBHOOK_SECRET_FIELD: secret}
            conn.set_extra(json.dumps(extra))
    except SQLAlchemyError as exc:
        # The statement's parameters would hold the secret: report the error type only.
        raise SecretStoreError(f"could not write connection {conn_id!r} ({type(exc).__name__})") from None
    if Connection.get_connection_from_secrets(conn_id).extra_dejson.get(WEBHOOK_SECRET_FIELD) != secret:
        raise SecretStoreError(f"connection {conn_id!r} was written, but another definition of it hides the secret")


def _elsewhere(conn_id: str, where: str) -> str:
    return (
        f"connection {conn_id!r} is defined in {where}, where the secret cannot be written; "
        "pass --secret-conn-id with a connection id kept in the metadata database"
    )
