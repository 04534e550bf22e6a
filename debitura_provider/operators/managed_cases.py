"""Operators that refer invoices to Debitura as managed cases and read or drive them.

Every operator returns JSON-safe dicts in the API's camelCase wire form (never pydantic objects,
which Airflow cannot deserialize downstream), without the debtor's personal data: a case comes
back as its :func:`~debitura_provider.api.personal_data.summary`, a timeline item without its free
text (docs/data-protection.md). Invalid input fails the task without retry and
names the field; outages fail the try so that Airflow's ``retries`` apply. Writes are made safe to
retry: case creation sends a body-derived ``Idempotency-Key``; a test payment, which the API takes
no key for, is guarded through the task's state (``debitura_provider.operators.payments``).

This module is the public import path of all four operators; the test payment and the bulk
referral live in ``debitura_provider.operators.payments`` and
``debitura_provider.operators.referral``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from debitura_provider.api import to_wire
from debitura_provider.api.models import Case, CreateManagedCaseRequest
from debitura_provider.api.personal_data import personal_values, request_shown, scrub, summary, timeline_summary
from debitura_provider.coercion import as_utc
from debitura_provider.compat import AirflowException
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.links import DebituraCaseLink, push_case_url
from debitura_provider.operators._base import DebituraBaseOperator
from debitura_provider.operators.payments import RecordTestPaymentOperator
from debitura_provider.operators.referral import OUTCOMES_XCOM_KEY, ReferInvoicesOperator

if TYPE_CHECKING:
    from debitura_provider.compat import Context

__all__ = [
    "OUTCOMES_XCOM_KEY",
    "CreateManagedCaseOperator",
    "FetchTimelineOperator",
    "RecordTestPaymentOperator",
    "ReferInvoicesOperator",
]


class CreateManagedCaseOperator(DebituraBaseOperator):
    """Refer one overdue invoice to Debitura as a managed case.

    :param case: the ``CreateManagedCaseRequest`` as a dict (camelCase or snake_case keys; Jinja
        and XComArgs work on its fields) or as the model (templated).
    :param idempotency_key: sent as ``Idempotency-Key`` (templated); by default derived from the
        body, so a retry after a lost response or a worker crash returns the first case instead of a second.
    :param debitura_conn_id: the ``debitura`` connection.
    :return: the created case's :func:`~debitura_provider.api.personal_data.summary` (``id``,
        ``reference``, ``lifecycle``, ``remainder`` ...; no debtor). The rendered ``case`` field shows
        the request without the debtor's personal data and free text.
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
        self._case: Any = case

    def _do_render_template_fields(
        self, parent: Any, template_fields: Iterable[str], context: Context, jinja_env: Any, seen_oids: set[int]
    ) -> None:
        """Render, then keep the debtor out of what Airflow stores as the rendered ``case``."""
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self and "case" in template_fields:
            self._case = self.case
            self.case = request_shown(_as_mapping(self.case))

    def work(self, context: Context) -> dict[str, Any]:
        client = self.hook.get_client()
        try:
            case: Case = self.call(
                "Creating the managed case",
                client.create_managed_case,
                self._case,
                idempotency_key=self.idempotency_key,
            )
        except AirflowException as exc:  # Debitura's answer might echo a value of the request
            values = personal_values(_as_mapping(self._case))
            if not any(value in str(exc) for value in values):
                raise
            raise type(exc)(scrub(str(exc), values)) from None
        push_case_url(context, self.hook, str(case.id))
        self.log.info("Managed case %s (reference %s) is %s", case.id, case.reference, case.lifecycle)
        return summary(case)


class FetchTimelineOperator(DebituraBaseOperator):
    """Read a managed case's timeline, optionally only what happened after ``since``.

    :param case_id: the managed case (templated).
    :param since: only items dated after this (templated): an ISO timestamp (naive means UTC), a
        date, or a datetime; ``None``, ``""`` or a rendered ``"None"`` mean the whole timeline.
    :param include_details: also return each item's ``description`` and ``actor``: free text and
        names, which then are in XCom (docs/data-protection.md).
    :param debitura_conn_id: the ``debitura`` connection.
    :return: the timeline items as Debitura orders them: ``date``, ``type`` and ``title``
        (:func:`~debitura_provider.api.personal_data.timeline_summary`), whole with ``include_details``.
    """

    template_fields: Sequence[str] = ("case_id", "since")
    operator_extra_links = (DebituraCaseLink(),)

    def __init__(
        self,
        *,
        case_id: str,
        since: str | datetime | date | None = None,
        include_details: bool = False,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(debitura_conn_id=debitura_conn_id, **kwargs)
        self.case_id = case_id
        self.since = since
        self.include_details = include_details

    def work(self, context: Context) -> list[dict[str, Any]]:
        since = self.coerce(as_utc, self.since, "since")
        client = self.hook.get_client()
        timeline = self.call("Reading the timeline", client.get_managed_case_timeline, self.case_id)
        push_case_url(context, self.hook, str(self.case_id))
        items = [i for i in timeline.items if since is None or (i.date is not None and i.date > since)]
        self.log.info("Timeline of %s: %d item(s)%s", self.case_id, len(items), f" after {since}" if since else "")
        return [to_wire(i) if self.include_details else timeline_summary(i) for i in items]


def _as_mapping(case: Any) -> Any:
    """A create request given as the model, as its wire dict; anything else as it is."""
    return case.to_json_types() if isinstance(case, CreateManagedCaseRequest) else case
