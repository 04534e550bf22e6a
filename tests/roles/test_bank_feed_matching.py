"""How bank lines are matched to cases (``agency_crm.bank_feed``), without Debitura or Airflow."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from agency_crm.bank_feed import CaseFacts, match_lines, references_in

CASE = CaseFacts("c-1", "Q8OAXF3W", "Active", "EUR", Decimal("100.00"))
CLOSED = CaseFacts("c-2", "ZZ11YY22", "Closed", "EUR", Decimal("0"))
CASES = {"AG-Q8OAXF3W": CASE, "AG-ZZ11YY22": CLOSED}


def line(
    n: int, amount: str, text: str, *, txn: str | None = None, currency: str = "EUR", day: str = "2026-11-30"
) -> dict[str, Any]:
    return {
        "feed_row_id": f"R{n}",
        "bank_transaction_id": txn or f"T{n}",
        "amount": amount,
        "currency": currency,
        "value_date": day,
        "remittance_info": text,
    }


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("ag q8oaxf3w", ["AG-Q8OAXF3W"]),
        ("Ref: AG-Q8OAXF3W, thanks", ["AG-Q8OAXF3W"]),
        ("AG_q8oaxf3w", ["AG-Q8OAXF3W"]),
        ("AG-Q8OAXF3W and AG-Q8OAXF3W", ["AG-Q8OAXF3W"]),
        ("Q8OAXF3W", []),
        ("bagq8oaxf3w", []),
        (None, []),
    ],
)
def test_references_are_read_as_debtors_write_them(text: str | None, found: list[str]) -> None:
    assert references_in(text) == found


def test_partial_payments_count_down_the_remainder_and_the_last_closes() -> None:
    plans, problems = match_lines(
        [
            line(1, "60.00", "AG-Q8OAXF3W"),
            line(2, "40.00", "ag q8oaxf3w", day="2026-12-01"),
            line(3, "0.01", "AG-Q8OAXF3W", day="2026-12-02"),
        ],
        CASES,
        known={},
    )
    assert [(p.feed_row_id, p.amount, p.close_case) for p in plans] == [
        ("R1", Decimal("60.00"), False),
        ("R2", Decimal("40.00"), True),
    ]
    assert [(p.feed_row_id, p.reason_code) for p in problems] == [("R3", "overpayment")]


def test_each_kind_of_noise_gets_its_reason() -> None:
    plans, problems = match_lines(
        [
            line(1, "10.00", "AG-Q8OAXF3W", txn="T-old"),
            line(2, "10.00", "AG-Q8OAXF3W", currency="SEK"),
            line(3, "10.00", "AG-ZZ11YY22"),
            line(4, "10.00", "AG-Q8OAXF3W AG-ZZ11YY22"),
            line(5, "10.00", "AG-AAAAAAAA"),
            line(6, "-5.00", "AG-Q8OAXF3W"),
            line(7, "10.00", "no ref"),
        ],
        CASES,
        known={"T-old": "R0"},
    )
    assert plans == []
    assert [p.reason_code for p in problems] == [
        "duplicate",
        "currency",
        "case_not_payable",
        "ambiguous",
        "unmatched",
        "not_a_payment",
        "no_reference",
    ]
    assert "feed row R0" in problems[0].reason


def test_the_same_amount_on_the_same_day_as_a_planned_payment_is_held_back() -> None:
    plans, problems = match_lines(
        [line(1, "10.00", "AG-Q8OAXF3W")], CASES, known={}, already_planned=[("c-1", "10.00", "2026-11-30")]
    )
    assert plans == [] and [p.reason_code for p in problems] == ["possible_duplicate"]
