"""What of Debitura's data may enter Airflow: case summaries and webhook events without debtor personal data.

XCom, trigger kwargs and events, rendered template fields, task logs and asset-event extras are kept
for months, are readable by every Airflow user with access to the DAG, and nobody purges them when
a debtor asks to be erased. So the provider writes there only what identifies a case and its money:

- a case :func:`summary`: ids and references, the creditor (the agency's client), amounts,
  currency, lifecycle, close code and dates;
- a timeline item's :func:`timeline_summary`: date, type and title (the description is free text);
- a webhook envelope's :func:`event_envelope`: the ids, lifecycle, close code, payment id, amount,
  currency, date and remainder of its ``data``, per event type (an allow-list: a field Debitura adds
  later is dropped until it is added here).

Debtor personal data is everything else a case carries about the debtor: name, contact person,
e-mail, phone, address, zip code, city, registration number, and the free text that may mention
them (comments, claim description, close comment, chat messages, timeline descriptions). It stays
in the agency's CRM and at Debitura. Who needs the full snapshot in Airflow asks for it explicitly
(``include_snapshots`` on the sensor), with the consequences in docs/data-protection.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from debitura_provider.api.models import Case, TimelineItem, to_wire

SUMMARY_FIELDS = (
    "id",
    "reference",
    "creditorReference",
    "creditorDivisionId",
    "isTestCase",
    "lifecycle",
    "closeCode",
    "currentEngagementPhase",
    "currency",
    "grossAmount",
    "remainder",
    "interestFees",
    "reminderFees",
    "collectionFees",
    "totalAddedFees",
    "date",
    "dueDate",
    "dateCreated",
    "dateUpdated",
    "dateCollectionStarted",
    "dateFinished",
)
"""The wire fields of a case :func:`summary` keeps, besides the creditor's id and company name."""

PERSONAL_FIELDS = (
    "debtor",
    "creditorComments",
    "claimDescription",
    "assignedUser",
    "bankAccount",
    "signingHandoff",
)
"""Wire fields of a case a summary never keeps: the debtor and free text (and people and accounts at Debitura)."""

TIMELINE_FIELDS = ("date", "type", "title")
"""What a timeline :func:`timeline_summary` keeps; ``description`` and ``actor`` are free text and names."""

_CASE_DATA = ("caseId", "reference", "lifecycle", "classification")
EVENT_DATA_FIELDS: dict[str, tuple[str, ...]] = {
    "case.assigned": _CASE_DATA,
    "case.updated": (*_CASE_DATA, "oldLifecycle", "newLifecycle"),
    "case.closed": (*_CASE_DATA, "closeCode"),
    "payment.created": (*_CASE_DATA, "paymentId", "amount", "previousAmount", "currency", "date", "remainder"),
    "payment.deleted": (*_CASE_DATA, "paymentId", "amount", "currency", "date", "remainder"),
    "chat.created": (*_CASE_DATA, "chatId", "roleLabel"),
}
"""The ``data`` fields of each webhook event type that are kept (``closeComment`` and ``message`` are free text)."""

ENVELOPE_FIELDS = ("id", "specVersion", "event", "timestamp", "links")
"""Envelope fields kept as delivered; ``data`` is filtered by :data:`EVENT_DATA_FIELDS`."""


DEBTOR_FIELDS = (
    "name",
    "contactPerson",
    "companyRegistrationNumber",
    "address",
    "zipCode",
    "city",
    "email",
    "phone",
)
"""The debtor's personal fields in a create request (wire names; the snake_case forms count too)."""
FREE_TEXT_FIELDS = ("comments", "claimDescription")
"""A create request's free text, which may mention the debtor."""
REQUEST_FIELDS = (
    "creditorCompanyName",
    "creditorCountryAlpha2",
    "creditorCountry",
    "creditorDivisionId",
    "currencyCode",
    "amountToRecover",
    "date",
    "dueDate",
    "creditorReference",
    "isTest",
    "tag",
)
"""What :func:`request_shown` keeps of a create request; of the debtor only its type and jurisdiction."""
_DEBTOR_SHOWN = ("type", "countryAlpha2", "country", "stateAlpha2", "state")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def personal_values(record: Any) -> list[str]:
    """The personal values of a create-request record (debtor fields and free text), longest first."""
    if not isinstance(record, Mapping):
        return []
    found = [record.get(k) for k in record if _camel(str(k)) in FREE_TEXT_FIELDS]
    debtor = record.get("debtor")
    if isinstance(debtor, Mapping):
        found += [debtor.get(k) for k in debtor if _camel(str(k)) in DEBTOR_FIELDS]
    texts = {str(v).strip() for v in found if isinstance(v, str | int) and not isinstance(v, bool)}
    return sorted((t for t in texts if len(t) >= 3), key=len, reverse=True)


def scrub(text: str, values: list[str]) -> str:
    """``text`` with every one of ``values`` replaced by ``<personal data>``: for messages that may echo input."""
    for value in values:
        text = text.replace(value, "<personal data>")
    return text


def request_shown(request: Any) -> Any:
    """A create request as Airflow may show it (rendered fields): :data:`REQUEST_FIELDS`, and of the
    debtor only its type and jurisdiction. Anything but a mapping is shown as its type."""
    if not isinstance(request, Mapping):
        return request if request is None else f"<{type(request).__name__}>"
    shown = {k: v for k, v in request.items() if _camel(str(k)) in REQUEST_FIELDS}
    debtor = request.get("debtor")
    if isinstance(debtor, Mapping):
        shown["debtor"] = {k: v for k, v in debtor.items() if _camel(str(k)) in _DEBTOR_SHOWN}
    return shown


def records_shown(records: Any, record_key: str) -> Any:
    """A list of records as Airflow may show it (rendered fields): how many, and their keys."""
    if not isinstance(records, list | tuple):
        return records if records is None else f"<{type(records).__name__}>"
    keys = [r.get(record_key) for r in records if isinstance(r, Mapping)]
    return {"records": len(records), "recordKeys": keys, "note": "record data is not kept in Airflow"}


def summary(case: Case) -> dict[str, Any]:
    """The case as Airflow may keep it: :data:`SUMMARY_FIELDS` in wire form, and the creditor's id and name."""
    wire = to_wire(case)
    kept = {name: wire[name] for name in SUMMARY_FIELDS if name in wire}
    creditor = wire.get("creditor") or {}
    kept["creditor"] = {"id": creditor.get("id"), "companyName": creditor.get("companyName")} if creditor else None
    return kept


def snapshot(case: Case, *, full: bool) -> dict[str, Any]:
    """The case in wire form, debtor and free text included, when ``full``; its :func:`summary` otherwise."""
    return to_wire(case) if full else summary(case)


def timeline_summary(item: TimelineItem) -> dict[str, Any]:
    """A timeline item without its free text: :data:`TIMELINE_FIELDS` in wire form."""
    wire = to_wire(item)
    return {name: wire.get(name) for name in TIMELINE_FIELDS}


def event_envelope(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """A delivered webhook envelope with only the allow-listed fields (:data:`EVENT_DATA_FIELDS`)."""
    kept = {name: envelope[name] for name in ENVELOPE_FIELDS if name in envelope}
    data = envelope.get("data")
    allowed = EVENT_DATA_FIELDS.get(str(envelope.get("event")), _CASE_DATA)
    kept["data"] = {name: data[name] for name in allowed if name in data} if isinstance(data, Mapping) else {}
    return kept
