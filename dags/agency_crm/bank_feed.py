"""The agency's bank feed as a collection partner, and how its lines are matched to the cases it works.

Debtors pay into the agency's account and write the agency's case reference (``AG-<Debitura
reference>``, set when the agency accepted the case) in the remittance text, more or less faithfully.
The bank delivers its lines into ``bank_feed``; :func:`match_lines` decides each new line's outcome:

- a **match**: one case, payable, same currency, not more than it owes: planned into
  ``bank_feed_payments`` (``pending``), recorded on Debitura, then ``recorded`` with the payment id;
- an **exception** in ``bank_feed_exceptions``, with a reason code and a sentence: ``duplicate``
  (the bank delivered the same transaction again), ``possible_duplicate`` (same case, amount and
  day as another transaction), ``no_reference``, ``unmatched`` (no case of the agency has it),
  ``ambiguous`` (references of several cases), ``currency`` (paid in another currency than the
  case's), ``case_not_payable`` (closed, or not yet accepted), ``overpayment`` (more than the case
  owes), ``not_a_payment`` (zero or negative: a reversal or a fee).

A line is decided once: lines already in either table are never looked at again, so running the
reconciliation again on the same feed records nothing twice. An exception stays until a person
resolves it (and deletes its row, to have the line matched again). Amounts are kept as decimal text,
exactly as the bank wrote them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from agency_crm.db import rows
from debitura_provider.api.money import same_amount, to_minor

PARTNER_REFERENCE_PREFIX = "AG-"
"""The agency's case reference is this prefix and Debitura's case reference: ``AG-Q8OAXF3W``."""

BANK_FEED_TABLES = (
    """CREATE TABLE IF NOT EXISTS bank_feed (
        feed_row_id VARCHAR(64) PRIMARY KEY,
        bank_transaction_id VARCHAR(64) NOT NULL,
        value_date DATE NOT NULL,
        amount VARCHAR(32) NOT NULL,
        currency VARCHAR(8) NOT NULL,
        payer_name VARCHAR(200),
        remittance_info VARCHAR(500),
        imported_at VARCHAR(40) NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS bank_feed_payments (
        bank_transaction_id VARCHAR(64) PRIMARY KEY,
        feed_row_id VARCHAR(64) NOT NULL,
        case_id VARCHAR(40) NOT NULL,
        case_reference VARCHAR(40),
        amount VARCHAR(32) NOT NULL,
        currency VARCHAR(8) NOT NULL,
        payment_date DATE NOT NULL,
        close_case INTEGER NOT NULL,
        status VARCHAR(16) NOT NULL,
        payment_id VARCHAR(40),
        remaining_after VARCHAR(32),
        planned_at VARCHAR(40) NOT NULL,
        recorded_at VARCHAR(40)
    )""",
    """CREATE TABLE IF NOT EXISTS bank_feed_exceptions (
        feed_row_id VARCHAR(64) PRIMARY KEY,
        bank_transaction_id VARCHAR(64) NOT NULL,
        reason_code VARCHAR(32) NOT NULL,
        reason VARCHAR(500) NOT NULL,
        case_id VARCHAR(40),
        raised_at VARCHAR(40) NOT NULL
    )""",
)

PAYABLE = ("Active", "Paused", "More Info Required")
"""Lifecycle labels of cases Debitura takes payments on."""

_REFERENCE = re.compile(r"\bAG[\s\-_/.]*([A-Z0-9]{8})\b")


def ensure_bank_feed_schema(connection: Connection) -> None:
    for statement in BANK_FEED_TABLES:
        connection.execute(text(statement))


def partner_reference(case_reference: str) -> str:
    return f"{PARTNER_REFERENCE_PREFIX}{case_reference.strip().upper()}"


def references_in(remittance: str | None) -> list[str]:
    """The agency references a remittance text cites, normalised (``ag q8oaxf3w`` -> ``AG-Q8OAXF3W``)."""
    found = _REFERENCE.findall((remittance or "").upper())
    return list(dict.fromkeys(partner_reference(r) for r in found))


@dataclass(frozen=True)
class CaseFacts:
    """What matching needs to know of a case: no debtor data."""

    case_id: str
    reference: str
    lifecycle: str
    currency: str
    remainder: Decimal


@dataclass(frozen=True)
class Plan:
    """A bank line to record as a payment on a case."""

    bank_transaction_id: str
    feed_row_id: str
    case_id: str
    case_reference: str
    amount: Decimal
    currency: str
    payment_date: str
    close_case: bool


@dataclass(frozen=True)
class Exception_:
    feed_row_id: str
    bank_transaction_id: str
    reason_code: str
    reason: str
    case_id: str | None = None


def unprocessed_lines(connection: Connection) -> list[dict[str, Any]]:
    """Feed lines neither planned nor excepted yet, oldest first."""
    return rows(
        connection,
        "SELECT f.* FROM bank_feed f "
        "WHERE f.feed_row_id NOT IN (SELECT feed_row_id FROM bank_feed_exceptions) "
        "AND f.feed_row_id NOT IN (SELECT feed_row_id FROM bank_feed_payments) "
        "ORDER BY f.value_date, f.feed_row_id",
    )


def known_transactions(connection: Connection) -> dict[str, str]:
    """Bank transaction id -> the feed row that first carried it (planned or excepted)."""
    known = {
        r["bank_transaction_id"]: r["feed_row_id"]
        for r in rows(connection, "SELECT bank_transaction_id, feed_row_id FROM bank_feed_exceptions")
    }
    known.update(
        {
            r["bank_transaction_id"]: r["feed_row_id"]
            for r in rows(connection, "SELECT bank_transaction_id, feed_row_id FROM bank_feed_payments")
        }
    )
    return known


def match_lines(
    lines: Iterable[Mapping[str, Any]],
    cases: Mapping[str, CaseFacts],
    known: Mapping[str, str],
    already_planned: Iterable[tuple[str, str, str]] = (),
) -> tuple[list[Plan], list[Exception_]]:
    """Decide every line: a plan to record it, or an exception with its reason.

    ``cases`` maps agency references to the cases they belong to. ``known`` holds the bank
    transactions an earlier run decided. ``already_planned`` holds ``(case id, amount, date)`` of
    payments planned before (possible duplicates are checked against them too). The remainder of
    each case goes down with each planned line, so two partial payments never together exceed it.
    """
    plans: list[Plan] = []
    problems: list[Exception_] = []
    seen: dict[str, str] = dict(known)
    owed = {facts.case_id: facts.remainder for facts in cases.values()}
    same_day: set[tuple[str, int, str]] = set()
    for case_id, amount, day in already_planned:
        currency = next((c.currency for c in cases.values() if c.case_id == case_id), None)
        same_day.add((case_id, to_minor(amount, currency), day))
    for line in lines:
        row_id, txn = str(line["feed_row_id"]), str(line["bank_transaction_id"])

        def problem(code: str, reason: str, case_id: str | None = None) -> None:
            problems.append(Exception_(row_id, txn, code, reason, case_id))  # noqa: B023

        if txn in seen:
            problem("duplicate", f"bank transaction {txn} was delivered before (feed row {seen[txn]})")
            continue
        seen[txn] = row_id
        amount, currency, day = Decimal(str(line["amount"])), str(line["currency"]).upper(), str(line["value_date"])
        if amount <= 0:
            problem("not_a_payment", f"amount {amount} {currency} is not a payment received (reversal or fee)")
            continue
        references = references_in(line.get("remittance_info"))
        if not references:
            problem("no_reference", "the remittance text cites no agency reference (AG-...)")
            continue
        matched = {cases[r].case_id: cases[r] for r in references if r in cases}
        if not matched:
            problem("unmatched", f"no case the agency works has reference {', '.join(references)}")
            continue
        if len(matched) > 1:
            problem(
                "ambiguous",
                f"the text cites {len(matched)} cases ({', '.join(sorted(c.reference for c in matched.values()))}); "
                "split the payment by hand",
            )
            continue
        (facts,) = matched.values()
        if facts.lifecycle not in PAYABLE:
            problem(
                "case_not_payable",
                f"case {facts.reference} is {facts.lifecycle}; payments need it Active, Paused or More Info Required",
                facts.case_id,
            )
            continue
        if currency != facts.currency.upper():
            problem(
                "currency",
                f"paid in {currency}, case {facts.reference} is in {facts.currency}: convert it and record it by hand",
                facts.case_id,
            )
            continue
        key = (facts.case_id, to_minor(amount, currency), day)
        if key in same_day:
            problem(
                "possible_duplicate",
                f"another transaction paid case {facts.reference} the same {amount} "
                f"{currency} on {day}; check with the bank before recording it",
                facts.case_id,
            )
            continue
        left = owed[facts.case_id]
        if to_minor(amount, currency) > to_minor(left, currency):
            problem(
                "overpayment",
                f"pays {amount} {currency} but case {facts.reference} owes {left}; refund or "
                "record the part owed by hand",
                facts.case_id,
            )
            continue
        same_day.add(key)
        owed[facts.case_id] = left - amount
        plans.append(
            Plan(
                txn,
                row_id,
                facts.case_id,
                facts.reference,
                amount,
                currency,
                day,
                close_case=same_amount(amount, left, currency),
            )
        )
    return plans, problems


def save_decisions(connection: Connection, plans: list[Plan], problems: list[Exception_], at: str) -> None:
    for plan in plans:
        connection.execute(
            text(
                "INSERT INTO bank_feed_payments (bank_transaction_id, feed_row_id, case_id, case_reference, amount, "
                "currency, payment_date, close_case, status, planned_at) VALUES (:txn, :row, :case_id, :ref, :amount, "
                ":currency, :day, :close, 'pending', :at) ON CONFLICT (bank_transaction_id) DO NOTHING"
            ),
            {
                "txn": plan.bank_transaction_id,
                "row": plan.feed_row_id,
                "case_id": plan.case_id,
                "ref": plan.case_reference,
                "amount": str(plan.amount),
                "currency": plan.currency,
                "day": plan.payment_date,
                "close": int(plan.close_case),
                "at": at,
            },
        )
    for p in problems:
        connection.execute(
            text(
                "INSERT INTO bank_feed_exceptions (feed_row_id, bank_transaction_id, reason_code, reason, case_id, "
                "raised_at) VALUES (:row, :txn, :code, :reason, :case_id, :at) ON CONFLICT (feed_row_id) DO NOTHING"
            ),
            {
                "row": p.feed_row_id,
                "txn": p.bank_transaction_id,
                "code": p.reason_code,
                "reason": p.reason[:500],
                "case_id": p.case_id,
                "at": at,
            },
        )


def pending_payments(connection: Connection) -> list[dict[str, Any]]:
    """Planned payments not yet confirmed by Debitura (this run's and any an interrupted run left)."""
    return rows(
        connection, "SELECT * FROM bank_feed_payments WHERE status = 'pending' ORDER BY planned_at, bank_transaction_id"
    )


def mark_recorded(connection: Connection, bank_transaction_id: str, payment_id: str, remaining: Any, at: str) -> int:
    return connection.execute(
        text(
            "UPDATE bank_feed_payments SET status = 'recorded', payment_id = :payment_id, "
            "remaining_after = :remaining, recorded_at = :at WHERE bank_transaction_id = :txn AND status = 'pending'"
        ),
        {"payment_id": payment_id, "remaining": str(remaining), "at": at, "txn": bank_transaction_id},
    ).rowcount


# --- A sample feed for the demo and the tests -----------------------------------------------------

_PAYERS = ("NORDSTRAND HANDEL AB", "K. LINDQVIST", "BRUNO SCHMIDT GMBH", "HAVEN FOODS LTD", "M. OLSEN")


def sample_feed(cases: list[CaseFacts], today: str, imported_at: str) -> list[dict[str, Any]]:
    """Bank lines paying the given cases (at least five), with the noise a real feed has.

    Deterministic for the same cases: partial payments, a payment in full, references typed
    carelessly, the same transaction delivered twice, a payment in another currency, a line citing
    two cases, one overpaying, one with a reference nobody has, one without any, and a reversal.
    """
    if len(cases) < 5:
        raise ValueError("the sample feed needs at least five cases to pay")
    a, b, c, d, e = cases[:5]

    def part(case: CaseFacts, share: str) -> str:
        return str((case.remainder * Decimal(share)).quantize(Decimal("0.01")))

    lines = [
        # (bank transaction id, amount, currency, remittance text)
        ("TX-1001", str(a.remainder), a.currency, f"Payment {partner_reference(a.reference)} in full"),
        ("TX-1002", part(b, "0.40"), b.currency, f"ref {partner_reference(b.reference)} first instalment"),
        ("TX-1003", part(b, "0.30"), b.currency, f"AG {b.reference.lower()} 2nd instalment"),
        ("TX-1002", part(b, "0.40"), b.currency, f"ref {partner_reference(b.reference)} first instalment"),
        ("TX-1004", part(c, "0.50"), c.currency, f"ag-{c.reference.lower()}"),
        ("TX-1005", part(c, "0.50"), c.currency, f"AG-{c.reference} again"),
        ("TX-1006", part(d, "0.25"), "SEK" if d.currency != "SEK" else "NOK", f"{partner_reference(d.reference)}"),
        (
            "TX-1007",
            part(d, "0.10"),
            d.currency,
            f"{partner_reference(d.reference)} + {partner_reference(e.reference)}",
        ),
        ("TX-1008", str(e.remainder + Decimal("100.00")), e.currency, f"Invoice {partner_reference(e.reference)}"),
        ("TX-1009", "250.00", a.currency, "AG-ZZ99ZZ99 payment"),
        ("TX-1010", "75.00", a.currency, "Thank you for your patience"),
        ("TX-1011", "-40.00", b.currency, f"Chargeback {partner_reference(b.reference)}"),
    ]
    return [
        {
            "feed_row_id": f"ROW-{n:03d}",
            "bank_transaction_id": txn,
            "value_date": today,
            "amount": amount,
            "currency": currency,
            "payer_name": _PAYERS[n % len(_PAYERS)],
            "remittance_info": remittance,
            "imported_at": imported_at,
        }
        for n, (txn, amount, currency, remittance) in enumerate(lines, start=1)
    ]


SAMPLE_OUTCOMES = {
    "ROW-001": "recorded",
    "ROW-002": "recorded",
    "ROW-003": "recorded",
    "ROW-004": "duplicate",
    "ROW-005": "recorded",
    "ROW-006": "possible_duplicate",
    "ROW-007": "currency",
    "ROW-008": "ambiguous",
    "ROW-009": "overpayment",
    "ROW-010": "unmatched",
    "ROW-011": "no_reference",
    "ROW-012": "not_a_payment",
}
"""What reconciling :func:`sample_feed` on five open cases must give for each line."""


def insert_feed(connection: Connection, lines: list[dict[str, Any]]) -> int:
    """Add bank lines (the bank's import does this in production); lines already there are kept."""
    added = 0
    for line in lines:
        added += connection.execute(
            text(
                "INSERT INTO bank_feed (feed_row_id, bank_transaction_id, value_date, amount, currency, payer_name, "
                "remittance_info, imported_at) VALUES (:feed_row_id, :bank_transaction_id, :value_date, :amount, "
                ":currency, :payer_name, :remittance_info, :imported_at) ON CONFLICT (feed_row_id) DO NOTHING"
            ),
            line,
        ).rowcount
    return added
