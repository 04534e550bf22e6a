"""Referring a whole CRM extract in one task: every record gets an outcome, a retry resends only failures."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from debitura_provider.api.personal_data import personal_values, records_shown, scrub
from debitura_provider.api.referral import Status, refer
from debitura_provider.coercion import as_bool
from debitura_provider.compat import AirflowException, AirflowFailException, task_state_store
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.operators._base import DebituraBaseOperator

if TYPE_CHECKING:
    from debitura_provider.compat import Context

OUTCOMES_XCOM_KEY = "outcomes"
"""The XCom key of the outcomes when some records failed (the task fails, so there is no return value)."""


class ReferInvoicesOperator(DebituraBaseOperator):
    """Refer a whole CRM extract in one task, with bounded concurrency inside the key's rate budget.

    Every record is validated first; invalid ones and in-batch duplicates are ``rejected`` with
    field-level reasons and never sent. The rest are created concurrently (``max_concurrency``
    requests in flight). One record never fails the batch: each gets an outcome, in input order::

        {"recordKey", "status": "created" | "existing" | "rejected" | "failed", "caseId", "reference",
         "lifecycle", "remainder", "currency", "reason", "fieldErrors", "retryable"}

    ``existing`` means Debitura answered with the case ``known_cases`` holds for the record: the same
    invoice was referred before (the body-derived ``Idempotency-Key`` replays it). Debitura's replay
    is verbatim, with no marker (API-NOTES §7.3), so only a known case id tells a replay from a new
    case; without ``known_cases`` every case returned is ``created``.

    When records end ``failed`` (outages that outlived the client's retries), the outcomes are
    pushed to XCom under ``outcomes`` and the task fails: retryable if any failure is. A retry sends
    only the records that failed; the others keep the outcome an earlier try gave them (kept in the
    task instance's ``task_state_store``). Resending everything would be safe (created cases come
    back with the same ids) but, under a flaky network, would put every record at risk again on
    every try, and a large batch would never come through whole. On success the outcomes are the
    return value.

    Where the records come from, one of:

    - ``records_sql``: a query run at execution time on ``records_conn_id``, any common-sql
      connection (``DbApiHook``: SQLite, PostgreSQL, MySQL ...), through SQLAlchemy, so
      ``records_parameters`` use the ``:name`` style on every database. Each row is a record: its
      columns are the record's fields (``debtor.name`` nests), NULL columns are left out, and
      ``records_json_column`` names a column holding the whole record as a JSON object (its other
      columns are added to it). The records never enter XCom or the rendered fields: this is the
      way for a real extract (docs/data-protection.md).
    - ``records``: a list of records (templated; an XComArg works), for tests and small batches.
      The rendered field shows only their count and keys, but an XComArg's records are in the
      upstream task's XCom, and a list written in the DAG file is in the DAG's stored source.

    Outcomes name the field and the record key; a reason that would echo one of the record's
    personal values (a debtor field, the comments) has it replaced.

    :param records: the records themselves (see above).
    :param records_sql: the query that returns the records (templated).
    :param records_conn_id: the SQL connection ``records_sql`` runs on.
    :param records_parameters: the query's ``:name`` parameters (templated).
    :param records_json_column: the column holding each record as a JSON object, if any.
    :param record_key: the field holding each record's own key; removed before sending.
    :param max_concurrency: create requests in flight at once (1 or more); the connection's rate
        budget still applies.
    :param debitura_conn_id: the ``debitura`` connection.
    :param is_test: when set, overrides ``isTest`` on every record (a bool or true/false text).
    :param tag: when set, overrides ``tag`` on every record (templated; e.g. to clean test cases up by tag).
    :param known_cases: record key -> case id of earlier referrals (templated; e.g. from a ledger), so
        that a replayed referral ends ``existing``.
    """

    template_fields: Sequence[str] = ("records", "records_sql", "records_parameters", "tag", "known_cases")
    template_fields_renderers = {"records": "json", "records_sql": "sql", "records_parameters": "json"}

    SETTLED_KEY = "debitura_referral_settled"

    def __init__(
        self,
        *,
        records: list[dict[str, Any]] | None = None,
        records_sql: str | None = None,
        records_conn_id: str | None = None,
        records_parameters: Mapping[str, Any] | None = None,
        records_json_column: str | None = None,
        record_key: str = "record_id",
        max_concurrency: int = 8,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        is_test: bool | None = None,
        tag: str | None = None,
        known_cases: Mapping[Any, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(debitura_conn_id=debitura_conn_id, **kwargs)
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be 1 or more")
        if (records is None) == (records_sql is None):
            raise ValueError("give the records either as records or as records_sql (with records_conn_id)")
        if records_sql is not None and not records_conn_id:
            raise ValueError("records_sql needs records_conn_id, the SQL connection to run it on")
        self.records = records
        self.records_sql = records_sql
        self.records_conn_id = records_conn_id
        self.records_parameters = records_parameters
        self.records_json_column = records_json_column
        self._records: Any = records
        self.record_key = record_key
        self.max_concurrency = max_concurrency
        self.is_test = is_test
        self.tag = tag
        self.known_cases = known_cases

    def _do_render_template_fields(
        self, parent: Any, template_fields: Iterable[str], context: Context, jinja_env: Any, seen_oids: set[int]
    ) -> None:
        """Render, then keep the rendered records out of what Airflow stores as rendered fields."""
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self and "records" in template_fields:
            self._records = self.records
            self.records = records_shown(self._records, self.record_key)

    def work(self, context: Context) -> list[dict[str, Any]]:
        records = self._read_records() if self.records_sql is not None else self._records
        if not isinstance(records, Sequence) or isinstance(records, str | bytes):
            raise AirflowFailException(f"records must be a list of mappings, got {type(records).__name__}")
        overrides: dict[str, Any] = {}
        if self.is_test is not None:
            overrides["isTest"] = self.coerce(as_bool, self.is_test, "is_test")
        if self.tag:
            overrides["tag"] = self.tag
        hook = self.hook
        self.call("Reading the Debitura connection", lambda: hook.settings)
        store = task_state_store(context)
        fingerprints = [self._fingerprint(record) for record in records]
        settled = _read_settled(store, self.SETTLED_KEY, fingerprints)
        pending = [i for i in range(len(records)) if i not in settled]
        if settled:
            self.log.info(
                "An earlier try settled %d of %d record(s); sending the other %d",
                len(settled),
                len(records),
                len(pending),
            )
        outcomes: list[dict[str, Any]] = [settled.get(i, {}) for i in range(len(records))]
        if pending:
            fresh = asyncio.run(self._refer(hook, [records[i] for i in pending], overrides))
            for index, outcome in zip(pending, fresh, strict=True):
                outcomes[index] = _without_personal_data(outcome.to_json(), records[index])
        counts = Counter(o["status"] for o in outcomes)
        self.log.info(
            "Referred %d record(s): %s",
            len(outcomes),
            ", ".join(f"{counts.get(s.value, 0)} {s.value}" for s in Status),
        )
        for outcome in outcomes:
            if outcome["status"] in (Status.REJECTED.value, Status.FAILED.value):
                self.log.warning("Record %s %s: %s", outcome["recordKey"], outcome["status"], outcome["reason"])
        failed = [o for o in outcomes if o["status"] == Status.FAILED.value]
        if failed:
            if store is not None:
                done = {i: (fingerprints[i], o) for i, o in enumerate(outcomes) if o["status"] != Status.FAILED.value}
                _write_settled(store, self.SETTLED_KEY, done)
            context["ti"].xcom_push(key=OUTCOMES_XCOM_KEY, value=outcomes)
            retryable = any(o["retryable"] for o in failed)
            message = (
                f"{len(failed)} of {len(outcomes)} record(s) could not be referred "
                f"({'retry the task: created cases replay idempotently' if retryable else 'not retryable'}); "
                f"outcomes are in XCom '{OUTCOMES_XCOM_KEY}'. First: {failed[0]['reason']}"
            )
            raise AirflowException(message) if retryable else AirflowFailException(message)
        if settled:
            _forget_settled(store, self.SETTLED_KEY)
        return outcomes

    def _read_records(self) -> list[Any]:
        """The rows of ``records_sql`` as records (class doc); a SQL error fails the try (retried)."""
        from sqlalchemy import text

        from debitura_provider.compat import BaseHook

        try:
            from airflow.providers.common.sql.hooks.sql import DbApiHook
        except ImportError:
            raise AirflowFailException(
                "records_sql needs apache-airflow-providers-common-sql (pip install 'airflow-provider-debitura[sql]')"
            ) from None
        hook = BaseHook.get_hook(str(self.records_conn_id))
        if not isinstance(hook, DbApiHook):
            raise AirflowFailException(
                f"records_conn_id: connection {self.records_conn_id!r} is not a SQL database connection "
                f"(its hook is {type(hook).__name__})"
            )
        engine = hook.get_sqlalchemy_engine()
        try:
            with engine.connect() as connection:
                found = connection.execute(text(str(self.records_sql)), dict(self.records_parameters or {}))
                rows = [dict(row) for row in found.mappings()]
        finally:
            engine.dispose()
        self.log.info("Read %d record(s) from connection %s", len(rows), self.records_conn_id)
        return [_record_of(row, self.records_json_column) for row in rows]

    def _fingerprint(self, record: Any) -> str:
        """Identifies a record as this task sends it, so a retry reuses an outcome only for the same record."""
        sent = [record, self.record_key, self.is_test, self.tag]
        return hashlib.sha256(json.dumps(sent, sort_keys=True, default=str).encode()).hexdigest()[:24]

    async def _refer(self, hook: DebituraHook, records: Sequence[Any], overrides: dict[str, Any]) -> list[Any]:
        async with await hook.get_async_client() as client:
            return await refer(
                client,
                records,
                record_key=self.record_key,
                max_concurrency=self.max_concurrency,
                overrides=overrides,
                known=self._known_cases(),
            )

    def _known_cases(self) -> dict[Any, str]:
        known: Any = self.known_cases  # rendered: may be an empty string
        if known is None or known == "":
            return {}
        if not isinstance(known, Mapping):
            raise AirflowFailException(
                f"known_cases must be a mapping of record key to case id, got {type(known).__name__}"
            )
        return {key: str(case_id) for key, case_id in known.items() if case_id}


def _record_of(row: Mapping[str, Any], json_column: str | None) -> dict[str, Any]:
    """One query row as a record: the JSON column's object, then the other columns, dotted names nested.

    A JSON column that is not a JSON object stays as the column, for validation to reject by name.
    """
    record: dict[str, Any] = {}
    columns = dict(row)
    if json_column is not None and json_column in columns:
        raw = columns.pop(json_column)
        try:
            loaded = json.loads(raw) if isinstance(raw, str | bytes) else raw
        except ValueError:
            loaded = None
        if isinstance(loaded, Mapping):
            record.update(loaded)
        elif raw is not None:
            record[json_column] = "<not a JSON object>"
    for name, value in columns.items():
        if value is None:
            continue
        *parents, leaf = str(name).split(".")
        target = record
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return record


def _without_personal_data(outcome: dict[str, Any], record: Any) -> dict[str, Any]:
    """The outcome with any of the record's personal values in its reasons replaced (Debitura's
    answers might echo them; the provider's own messages do not)."""
    values = personal_values(record)
    if not values:
        return outcome
    if outcome.get("reason"):
        outcome["reason"] = scrub(str(outcome["reason"]), values)
    if outcome.get("fieldErrors"):
        outcome["fieldErrors"] = {
            name: [scrub(str(m), values) for m in messages] for name, messages in outcome["fieldErrors"].items()
        }
    return outcome


SETTLED_PER_ENTRY = 200
"""Outcomes per ``task_state_store`` entry: each entry stays under the 64 KB Airflow advises per value."""


def _read_settled(store: Any, key: str, fingerprints: Sequence[str]) -> dict[int, dict[str, Any]]:
    """Outcomes an earlier try of this task instance settled, by position, for records still the same."""
    count = store.get(key) if store is not None else None
    settled: dict[int, dict[str, Any]] = {}
    for n in range(count if isinstance(count, int) else 0):
        for index, (fingerprint, outcome) in (store.get(f"{key}.{n}") or {}).items():
            position = int(index)
            if position < len(fingerprints) and fingerprints[position] == fingerprint:
                settled[position] = outcome
    return settled


def _write_settled(store: Any, key: str, settled: Mapping[int, tuple[str, dict[str, Any]]]) -> None:
    items = sorted(settled.items())
    chunks = [items[start : start + SETTLED_PER_ENTRY] for start in range(0, len(items), SETTLED_PER_ENTRY)]
    for n, chunk in enumerate(chunks):
        store.set(f"{key}.{n}", {str(index): [fingerprint, outcome] for index, (fingerprint, outcome) in chunk})
    store.set(key, len(chunks))  # last: a try that dies while writing leaves the earlier, smaller set readable


def _forget_settled(store: Any, key: str) -> None:
    count = store.get(key)
    store.delete(key)
    for n in range(count if isinstance(count, int) else 0):
        store.delete(f"{key}.{n}")
