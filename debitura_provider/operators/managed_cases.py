"""Operators that refer invoices to Debitura as managed cases and read or drive them.

Every operator returns JSON-safe dicts in the API's camelCase wire form (never pydantic objects,
which Airflow cannot deserialize downstream). Invalid input fails the task without retry and
names the field; outages fail the try so that Airflow's ``retries`` apply. Writes are made safe to
retry: case creation sends a body-derived ``Idempotency-Key``; a test payment, which the API takes
no key for, is guarded through the task's ``task_state_store``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from pydantic import ValidationError

from debitura_provider.api import DebituraClient, DebituraError, RequestValidationError
from debitura_provider.api.models import (
    Case,
    CreateManagedCaseRequest,
    Lifecycle,
    Payment,
    TestPaymentRequest,
    TestPaymentResponse,
)
from debitura_provider.api.referral import Status, refer
from debitura_provider.api import to_wire
from debitura_provider.failures import airflow_error
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.links import DebituraCaseLink, push_case_url

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

OUTCOMES_XCOM_KEY = "outcomes"


class _DebituraOperator(BaseOperator):
    """Shared plumbing: the hook, and turning client errors into task outcomes."""

    ui_color = "#e8f0fe"

    def __init__(self, *, debitura_conn_id: str = DebituraHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.debitura_conn_id = debitura_conn_id

    @property
    def hook(self) -> DebituraHook:
        return DebituraHook(self.debitura_conn_id)

    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DebituraError as exc:
            raise airflow_error(exc, doing) from None


class CreateManagedCaseOperator(_DebituraOperator):
    """Refer one overdue invoice to Debitura as a managed case.

    :param case: the ``CreateManagedCaseRequest`` as a dict (camelCase or snake_case keys; Jinja
        and XComArgs work on its fields) or as the model.
    :param idempotency_key: sent as ``Idempotency-Key``; by default derived from the body, so a
        retry after a lost response or a worker crash returns the first case instead of a second.
    :return: the created case in wire form (``id``, ``reference``, ``lifecycle``, ``remainder`` ...).
    """

    template_fields: Sequence[str] = ("case", "idempotency_key")
    template_fields_renderers = {"case": "json"}
    operator_extra_links = (DebituraCaseLink(),)

    def __init__(
        self,
        *,
        case: dict[str, Any] | CreateManagedCaseRequest,
        idempotency_key: str | None = None,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(debitura_conn_id=debitura_conn_id, **kwargs)
        self.case = case
        self.idempotency_key = idempotency_key

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.hook
        client = hook.get_client()
        case: Case = self._call(
            "Creating the managed case", client.create_managed_case, self.case, idempotency_key=self.idempotency_key
        )
        push_case_url(context, hook, str(case.id))
        self.log.info("Managed case %s (reference %s) is %s", case.id, case.reference, case.lifecycle)
        return to_wire(case)


class FetchTimelineOperator(_DebituraOperator):
    """Read a managed case's timeline, optionally only what happened after ``since``.

    :param since: an ISO timestamp (naive means UTC), a date, or a datetime.
    :return: the timeline items in wire form, as Debitura orders them.
    """

    template_fields: Sequence[str] = ("case_id", "since")
    operator_extra_links = (DebituraCaseLink(),)

    def __init__(
        self,
        *,
        case_id: str,
        since: str | datetime | date | None = None,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(debitura_conn_id=debitura_conn_id, **kwargs)
        self.case_id = case_id
        self.since = since

    def execute(self, context: Context) -> list[dict[str, Any]]:
        since = _as_utc(self.since, "since")
        hook = self.hook
        client = hook.get_client()
        timeline = self._call("Reading the timeline", client.get_managed_case_timeline, self.case_id)
        push_case_url(context, hook, str(self.case_id))
        items = [i for i in timeline.items if since is None or (i.date is not None and i.date > since)]
        self.log.info("Timeline of %s: %d item(s)%s", self.case_id, len(items), f" after {since}" if since else "")
        return [i.model_dump(mode="json", by_alias=True) for i in items]


class RecordTestPaymentOperator(_DebituraOperator):
    """Record a payment on an ``isTest`` managed case (what the integration-test loop needs).

    A production case is refused before anything is sent. The API takes no ``Idempotency-Key``
    for this call, so retries are made safe here instead: before sending, the task records in its
    ``task_state_store`` (which all tries of a task instance share) the payment ids already on the
    case; after sending, the response. A later try returns the stored response, or, if the earlier
    try died between sending and storing, finds the payment it made (new id, same amount and date)
    and returns that instead of paying again.

    :param payment_date: the payment's date (default: today, UTC).
    :param close_case: close the case as Paid when the payment settles it.
    :return: the payment response in wire form (``paymentId``, ``remainingAmount``, ``caseClosed`` ...).
    """

    template_fields: Sequence[str] = ("case_id", "amount", "payment_date", "close_case")
    operator_extra_links = (DebituraCaseLink(),)

    STATE_KEY = "debitura_test_payment"

    def __init__(
        self,
        *,
        case_id: str,
        amount: float,
        payment_date: str | date | None = None,
        close_case: bool = False,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(debitura_conn_id=debitura_conn_id, **kwargs)
        self.case_id = case_id
        self.amount = amount
        self.payment_date = payment_date
        self.close_case = close_case

    def execute(self, context: Context) -> dict[str, Any]:
        body = self._request(self.payment_date or _today()).to_wire()
        hook = self.hook
        client = hook.get_client()
        case: Case = self._call("Reading the case", client.get_managed_case, self.case_id)
        case_id = str(case.id)
        push_case_url(context, hook, case_id)
        if not case.is_test_case:
            raise AirflowFailException(
                f"Refusing to record a test payment on case {case_id} ({case.reference}): it is a production "
                "case (isTestCase is false). Test payments are only for cases created with isTest."
            )
        store = context.get("task_state_store")
        earlier: Any = store.get(self.STATE_KEY) if store is not None else None
        if not isinstance(earlier, dict) or earlier.get("caseId") != case_id:
            earlier = None
        elif not self.payment_date:  # a retry after midnight still means the payment of the first try
            body["date"] = earlier["request"]["date"]
        attempt: dict[str, Any] = {"caseId": case_id, "request": body}
        if earlier is not None and earlier["request"] == body:
            replay = self._earlier_result(client, case, earlier)
            if replay is not None:
                return replay
        if store is None:
            self.log.warning("No task_state_store: a retry of this task could record the payment twice")
        else:
            before = self._call("Reading the payments", client.get_managed_case_payments, case_id)
            store.set(self.STATE_KEY, {**attempt, "phase": "sending", "paymentIdsBefore": [str(p.id) for p in before]})
        response = self._send(client, case_id, body)
        result = response.model_dump(mode="json", by_alias=True)
        if store is not None:
            store.set(self.STATE_KEY, {**attempt, "phase": "done", "response": result})
        self.log.info("Recorded %s on %s; remaining %s", body["paymentAmount"], case_id, result["remainingAmount"])
        return result

    def _send(self, client: DebituraClient, case_id: str, body: dict[str, Any]) -> TestPaymentResponse:
        """The one non-idempotent request; kept apart so that the guard around it is easy to see."""
        response: TestPaymentResponse = self._call(
            "Recording the test payment", client.record_test_payment, case_id, body
        )
        return response

    def _request(self, when: str | date) -> TestPaymentRequest:
        try:
            amount = float(self.amount)
        except (TypeError, ValueError):
            raise AirflowFailException(f"Invalid test payment: amount: {self.amount!r} is not a number") from None
        try:
            return TestPaymentRequest.model_validate(
                {"date": when, "paymentAmount": amount, "closeCase": _as_bool(self.close_case)}
            )
        except ValidationError as exc:
            raise AirflowFailException(str(RequestValidationError.from_pydantic("test payment", exc))) from None

    def _earlier_result(self, client: DebituraClient, case: Case, earlier: Mapping[str, Any]) -> dict[str, Any] | None:
        """What an earlier try of this task already recorded, if anything."""
        if earlier.get("phase") == "done":
            self.log.info("An earlier try already recorded this payment; returning its response")
            response: dict[str, Any] = earlier["response"]
            return response
        known = set(earlier.get("paymentIdsBefore", ()))
        request = earlier["request"]
        payments: list[Payment] = self._call("Reading the payments", client.get_managed_case_payments, str(case.id))
        for payment in payments:
            same_day = payment.date is not None and payment.date.date().isoformat() == request["date"]
            same_amount = abs(payment.gross_amount - float(request["paymentAmount"])) < 0.005
            if str(payment.id) not in known and same_day and same_amount:
                self.log.info("An earlier try recorded payment %s before failing; not paying again", payment.id)
                fresh: Case = self._call("Reading the case", client.get_managed_case, str(case.id))
                return TestPaymentResponse(
                    payment_id=payment.id,
                    case_reference=fresh.reference,
                    date=payment.date,
                    payment_amount=payment.gross_amount,
                    case_closed=fresh.lifecycle_state is Lifecycle.CLOSED,
                    remaining_amount=fresh.remainder,
                ).model_dump(mode="json", by_alias=True)
        return None


class ReferInvoicesOperator(_DebituraOperator):
    """Refer a whole CRM extract in one task, with bounded concurrency inside the key's rate budget.

    Every record is validated first; invalid ones and in-batch duplicates are ``rejected`` with
    field-level reasons and never sent. The rest are created concurrently (``max_concurrency``
    requests in flight). One record never fails the batch: each gets an outcome, in input order::

        {"recordKey", "status": "created" | "existing" | "rejected" | "failed", "caseId", "reference",
         "lifecycle", "remainder", "currency", "reason", "fieldErrors", "retryable"}

    ``existing`` means Debitura returned a case created before this request: the same invoice was
    referred by an earlier run (the body-derived ``Idempotency-Key`` replays it).

    When records end ``failed`` (outages that outlived the client's retries), the outcomes are
    pushed to XCom under ``outcomes`` and the task fails: retryable if any failure is. A retry sends
    only the records that failed; the others keep the outcome an earlier try gave them (kept in the
    task instance's ``task_state_store``). Resending everything would be safe (created cases come
    back with the same ids) but, under a flaky network, would put every record at risk again on
    every try, and a large batch would never come through whole. On success the outcomes are the
    return value.

    :param records: the extract (templated; an XComArg works).
    :param record_key: the field holding each record's own key; removed before sending.
    :param is_test: when set, overrides ``isTest`` on every record.
    :param tag: when set, overrides ``tag`` on every record (e.g. to clean test cases up by tag).
    """

    template_fields: Sequence[str] = ("records", "tag")
    template_fields_renderers = {"records": "json"}

    SETTLED_KEY = "debitura_referral_settled"

    def __init__(
        self,
        *,
        records: list[dict[str, Any]],
        record_key: str = "record_id",
        max_concurrency: int = 8,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        is_test: bool | None = None,
        tag: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(debitura_conn_id=debitura_conn_id, **kwargs)
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be 1 or more")
        self.records = records
        self.record_key = record_key
        self.max_concurrency = max_concurrency
        self.is_test = is_test
        self.tag = tag

    def execute(self, context: Context) -> list[dict[str, Any]]:
        records = self.records
        if not isinstance(records, Sequence) or isinstance(records, str | bytes):
            raise AirflowFailException(f"records must be a list of mappings, got {type(records).__name__}")
        hook = self.hook
        self._call("Reading the Debitura connection", lambda: hook.settings)
        store = context.get("task_state_store")
        fingerprints = [self._fingerprint(record) for record in records]
        settled = _read_settled(store, self.SETTLED_KEY, fingerprints)
        pending = [i for i in range(len(records)) if i not in settled]
        if settled:
            self.log.info("An earlier try settled %d of %d record(s); sending the other %d",
                          len(settled), len(records), len(pending))
        outcomes: list[dict[str, Any]] = [settled.get(i, {}) for i in range(len(records))]
        if pending:
            fresh = asyncio.run(self._refer(hook, [records[i] for i in pending]))
            for index, outcome in zip(pending, fresh, strict=True):
                outcomes[index] = outcome.to_json()
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

    def _fingerprint(self, record: Any) -> str:
        """Identifies a record as this task sends it, so a retry reuses an outcome only for the same record."""
        sent = [record, self.record_key, self.is_test, self.tag]
        return hashlib.sha256(json.dumps(sent, sort_keys=True, default=str).encode()).hexdigest()[:24]

    async def _refer(self, hook: DebituraHook, records: Sequence[Any]) -> list[Any]:
        overrides: dict[str, Any] = {}
        if self.is_test is not None:
            overrides["isTest"] = _as_bool(self.is_test)
        if self.tag:
            overrides["tag"] = self.tag
        async with await hook.get_async_client() as client:
            return await refer(
                client,
                records,
                record_key=self.record_key,
                max_concurrency=self.max_concurrency,
                overrides=overrides,
            )


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


def _as_utc(value: str | datetime | date | None, name: str) -> datetime | None:
    """A templated point in time; naive values and plain dates are read as UTC.

    ``"None"`` counts as no value: it is what ``{{ ... }}`` renders for None without native rendering.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise AirflowFailException(f"{name}: {value!r} is not an ISO date or timestamp") from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def _as_bool(value: Any) -> bool:
    """A flag that may arrive rendered as text ("False") from a template."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)
