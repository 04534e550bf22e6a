"""Bring cases' chat messages into the agency's own database (its CRM), once each.

A managing partner may read, not write, the chat between the creditor and the collection partner
(``GET /managed-cases/{id}/chats``); a collection partner reads its own (``GET /cases/{id}/chats``).
Messages are free text that may name the debtor, so they go straight into a table of a SQL
connection (any ``DbApiHook``: SQLite, PostgreSQL ...) and never into XCom or the task log: the
task returns counts. Rows are keyed by the message id and inserted with ``ON CONFLICT DO NOTHING``,
so a retry or a second run adds nothing that is already there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text

from debitura_provider.api.models import ChatMessage
from debitura_provider.coercion import as_id_list
from debitura_provider.compat import AirflowFailException, BaseHook
from debitura_provider.operators._base import DebituraBaseOperator

if TYPE_CHECKING:
    from debitura_provider.compat import Context

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

_TABLE = """CREATE TABLE IF NOT EXISTS {table} (
    chat_id VARCHAR(40) PRIMARY KEY,
    case_id VARCHAR(40) NOT NULL,
    date_created VARCHAR(40),
    role INTEGER,
    role_label VARCHAR(40),
    author_email VARCHAR(200),
    message TEXT,
    is_seen INTEGER NOT NULL,
    synced_at VARCHAR(40) NOT NULL
)"""


class SyncCaseChatsOperator(DebituraBaseOperator):
    """Copy new chat messages of cases into ``table`` of the SQL connection ``sql_conn_id``.

    :param case_ids: one case id or a list (templated; an XComArg works).
    :param sql_conn_id: a SQL database connection (the CRM); the table is created if missing.
    :param table: the table's name (letters, digits and ``_``).
    :param role: ``managing`` (the default: cases this partner referred) or ``collection``.
    :return: ``{"cases", "messages", "new", "newByCase": {case_id: count}}``.
    """

    template_fields: Sequence[str] = ("case_ids",)

    def __init__(
        self,
        *,
        case_ids: Any,
        sql_conn_id: str,
        table: str = "case_chat_messages",
        role: str = "managing",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not _IDENTIFIER.match(table):
            raise ValueError(f"table: {table!r} is not a plain SQL identifier")
        if role not in ("managing", "collection"):
            raise ValueError("role must be 'managing' or 'collection'")
        self.case_ids = case_ids
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.role = role

    def _engine(self) -> Any:
        hook = BaseHook.get_hook(self.sql_conn_id)
        if not hasattr(hook, "get_sqlalchemy_engine"):
            raise AirflowFailException(f"sql_conn_id: {self.sql_conn_id!r} is not a SQL database connection")
        return hook.get_sqlalchemy_engine()

    def work(self, context: Context) -> dict[str, Any]:
        try:
            case_ids = [] if self.case_ids in ([], ()) else as_id_list(self.case_ids, "case_ids")
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        client = self.hook.get_client()
        read = client.get_managed_case_chats if self.role == "managing" else client.get_case_chats
        engine = self._engine()
        table = self.table
        known_sql = text(f"SELECT chat_id FROM {table} WHERE case_id IN :case_ids").bindparams(
            bindparam("case_ids", expanding=True)
        )
        insert = text(
            f"INSERT INTO {table} (chat_id, case_id, date_created, role, role_label, author_email, message, "
            "is_seen, synced_at) VALUES (:chat_id, :case_id, :date_created, :role, :role_label, :author_email, "
            ":message, :is_seen, :synced_at) ON CONFLICT (chat_id) DO NOTHING"
        )
        new_by_case: dict[str, int] = {}
        seen = 0
        try:
            with engine.begin() as connection:
                connection.execute(text(_TABLE.format(table=table)))
                known = {row[0] for row in connection.execute(known_sql, {"case_ids": case_ids})}
            for case_id in case_ids:
                messages: list[ChatMessage] = self.call("Reading the chat", read, case_id)
                seen += len(messages)
                rows = [_row(case_id, m) for m in messages if str(m.id) not in known]
                if rows:
                    with engine.begin() as connection:
                        added = sum(connection.execute(insert, row).rowcount for row in rows)
                    new_by_case[case_id] = added
        finally:
            engine.dispose()
        new = sum(new_by_case.values())
        self.log.info("%d chat message(s) on %d case(s); %d new into %s", seen, len(case_ids), new, table)
        return {"cases": len(case_ids), "messages": seen, "new": new, "newByCase": new_by_case}


def _row(case_id: str, m: ChatMessage) -> dict[str, Any]:
    return {
        "chat_id": str(m.id),
        "case_id": case_id,
        "date_created": m.date_created.isoformat() if m.date_created else None,
        "role": m.role,
        "role_label": m.role_label,
        "author_email": m.user.email if m.user else None,
        "message": m.message,
        "is_seen": int(m.is_seen),
        "synced_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
