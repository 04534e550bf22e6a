"""Case arithmetic: remainder, per-bucket outstanding, success fee and payout split.

Amounts are ``Decimal`` rounded to cents, so sums never drift the way float cents do.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal

from debitura_provider.sandbox.domain.state import CaseRecord

CENT = Decimal("0.01")
MAX_AMOUNT = 79228162514264337593543950335.0
"""The largest amount Debitura can store (.NET ``decimal.MaxValue``); larger ones are refused with a 400."""
_WIDE = Context(prec=60)

# Pre-legal success fee (percent of what is collected) by principal; assumed tiers, the spec publishes none.
_FEE_TIERS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(1000), Decimal("25.0")),
    (Decimal(5000), Decimal("20.0")),
    (Decimal(25000), Decimal("15.0")),
)
_FEE_ABOVE = Decimal("10.0")


def cents(value: float | Decimal | int) -> Decimal:
    """A money amount rounded half-up to the cent; floats go through ``str`` so 0.1 stays 0.1."""
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return amount.quantize(CENT, rounding=ROUND_HALF_UP, context=_WIDE)


def total_fees(case: CaseRecord) -> Decimal:
    return case.interest_fees + case.reminder_fees + case.collection_fees


def total_owed(case: CaseRecord) -> Decimal:
    """Principal plus fees: what 'outstanding' means for the Paid / PartiallyPaid rules."""
    return case.gross_amount + total_fees(case)


def total_paid(case: CaseRecord) -> Decimal:
    return sum((p.amount for p in case.live_payments), Decimal(0))


def remainder(case: CaseRecord) -> Decimal:
    """Gross amount + fees - payments (UpdateCaseFeesResponse's definition)."""
    return total_owed(case) - total_paid(case)


@dataclass(frozen=True)
class Outstanding:
    principal: Decimal
    interest: Decimal
    reminder_fees: Decimal
    collection_fees: Decimal


def outstanding(case: CaseRecord) -> Outstanding:
    """Payments settle collection fees first, then reminder fees, interest, and principal last (assumed order)."""
    left = total_paid(case)
    buckets = []
    for owed in (case.collection_fees, case.reminder_fees, case.interest_fees, case.gross_amount):
        paid = min(owed, left)
        left -= paid
        buckets.append(owed - paid)
    collection, reminder, interest, principal = buckets
    return Outstanding(principal=principal, interest=interest, reminder_fees=reminder, collection_fees=collection)


def success_fee(principal: Decimal) -> Decimal:
    """The pre-legal success fee in percent for a principal (assumed tiers)."""
    for limit, fee in _FEE_TIERS:
        if principal <= limit:
            return fee
    return _FEE_ABOVE


def computed_split(amount: Decimal, fee_percent: Decimal) -> tuple[Decimal, Decimal]:
    """(creditor, collection partner) shares of a payment when the caller gives no explicit split."""
    partner = cents(amount * fee_percent / 100)
    return amount - partner, partner
