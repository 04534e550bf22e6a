"""Recording, editing and deleting payments, with the remainder, close and reopen rules of the spec."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from debitura_provider.api.models import CloseCode, Lifecycle, UpdatePaymentRequest
from debitura_provider.sandbox.domain import events, lifecycle, money
from debitura_provider.sandbox.domain.clock import DAY
from debitura_provider.sandbox.domain.problems import bad_request, conflict, not_found, unprocessable
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.state import Actor, CaseRecord, PaymentRecord, User

ZERO_CREDITOR = "The explicit split gives the creditor nothing (PayoutCreditor is 0); check that this is intended."
NOTHING_OWED = "The case had no outstanding balance before this payment; check that it is not a duplicate."


@dataclass(frozen=True)
class NewPayment:
    """A payment as one of the three recording endpoints describes it."""

    date: date
    amount: Decimal
    recipient: str
    commission_payment_status: str
    split: tuple[Decimal, Decimal] | None = None  # an explicit split from the caller
    creditor_only: bool = False  # managing partners' test payments: all to the creditor


@dataclass(frozen=True)
class Recorded:
    payment: PaymentRecord
    closed: bool
    warnings: list[str]


def record(sb: Sandbox, case: CaseRecord, new: NewPayment, close_case: bool, by: User | None, actor: Actor) -> Recorded:
    """Record a payment; with ``close_case`` a payment that settles the remainder closes the case as Paid.

    A partial payment with ``close_case`` is recorded and the case stays open (the spec's newer rule).
    """
    lifecycle.require_payable(case)
    before = money.remainder(case)
    warnings: list[str] = []
    if new.split is not None:
        creditor, partner = new.split
        if creditor == 0:
            warnings.append(ZERO_CREDITOR)
        if before <= 0:
            warnings.append(NOTHING_OWED)
    elif new.creditor_only:
        creditor, partner = new.amount, Decimal(0)
    else:
        creditor, partner = money.computed_split(new.amount, case.success_fee)
    payment = PaymentRecord(
        id=sb.store.child_id(case),
        date_created=sb.now(),
        recorded=sb.clock.sandbox_time(),
        date=new.date,
        amount=new.amount,
        recipient=new.recipient,
        payout_creditor=creditor,
        payout_collection_partner=partner,
        commission_payment_status=new.commission_payment_status,
    )
    case.payments.append(payment)
    sb.record(
        case,
        "PaymentRegistered",
        "Payment registered",
        f"{payment.amount} {case.currency} received ({payment.recipient}); remainder "
        f"{money.remainder(case)} {case.currency}.",
        actor,
    )
    sb.dispatcher.publish(case, "payment.created", events.payment(case, payment))
    closed = close_case and new.amount >= before
    if closed:
        lifecycle.close(sb, case, CloseCode.PAID, None, by, actor)
    return Recorded(payment, closed, warnings)


def find(case: CaseRecord, payment_id: object) -> PaymentRecord:
    """A live payment of the case, or 404."""
    found = next((p for p in case.live_payments if p.id == payment_id), None)
    if found is None:
        raise not_found(f"Payment {payment_id} not found on case {case.reference}.")
    return found


def invoiced(sb: Sandbox, case: CaseRecord, payment: PaymentRecord) -> bool:
    """A payment's payout is invoiced ``payout_invoice_days`` sandbox days after it was recorded, test payments
    included: the spec gives the test-only PUT/DELETE of ``/managed-cases/{id}/payments`` the same 422."""
    return sb.clock.sandbox_time() - payment.recorded >= sb.config.payout_invoice_days * DAY


def _guard(
    sb: Sandbox, case: CaseRecord, payment: PaymentRecord, remainder_after: Decimal, reopen: bool, action: str
) -> bool:
    """Refuse an invoiced payout (422) and a silent reopen (409); True when the case must reopen."""
    if invoiced(sb, case, payment):
        raise unprocessable(
            f"The payout of this payment has already been invoiced; it cannot be {action}.", "PaymentInvoiced"
        )
    needs_reopen = case.lifecycle is Lifecycle.CLOSED and case.close_code is CloseCode.PAID and remainder_after > 0
    if needs_reopen and not reopen:
        raise conflict(
            f"This would leave the Paid case owing {remainder_after} {case.currency}; resend with "
            "reopenCaseIfNeeded=true to reopen it.",
            "ReopenConsentRequired",
        )
    return needs_reopen


def update(
    sb: Sandbox,
    case: CaseRecord,
    payment: PaymentRecord,
    request: UpdatePaymentRequest,
    actor: Actor,
    *,
    managed: bool = False,
) -> PaymentRecord:
    """Edit a payment; the split is recomputed unless given."""
    amount = money.cents(request.payment_amount)
    after = money.remainder(case) + payment.amount - amount
    must_reopen = _guard(sb, case, payment, after, request.reopen_case_if_needed, "edited")
    if request.payout_creditor is not None and request.payout_collection_partner is not None:
        split = (money.cents(request.payout_creditor), money.cents(request.payout_collection_partner))
    elif managed:
        split = (amount, Decimal(0))
    else:
        split = money.computed_split(amount, case.success_fee)
    old = payment.amount
    payment.amount = amount
    payment.date = request.date
    payment.recipient = request.payment_recipient.value
    payment.payout_creditor, payment.payout_collection_partner = split
    if request.commission_payment_status is not None:
        payment.commission_payment_status = request.commission_payment_status.value
    payment.date_updated = sb.now()
    sb.record(
        case,
        "PaymentUpdated",
        "Payment edited",
        f"Payment of {old} {case.currency} changed to {amount} {case.currency}.",
        actor,
    )
    if must_reopen:
        lifecycle.reopen(sb, case, actor, "a payment edit left an outstanding balance")
    return payment


def delete(sb: Sandbox, case: CaseRecord, payment: PaymentRecord, reopen: bool, actor: Actor) -> None:
    """Reverse a payment (kept as an audit record, so ``payment.deleted`` can be fired for it later)."""
    must_reopen = _guard(sb, case, payment, money.remainder(case) + payment.amount, reopen, "deleted")
    payment.deleted_at = sb.now()
    sb.record(
        case, "PaymentDeleted", "Payment deleted", f"Payment of {payment.amount} {case.currency} was reversed.", actor
    )
    sb.dispatcher.publish(case, "payment.deleted", events.payment(case, payment))
    if must_reopen:
        lifecycle.reopen(sb, case, actor, "a payment was deleted")


def not_partial_close(case: CaseRecord, amount: Decimal, close_case: bool) -> None:
    """``POST /managed-cases/{id}/payments``: closeCase with less than the remainder is a 400."""
    if close_case and amount < money.remainder(case):
        raise bad_request(
            f"closeCase=true needs the payment to cover the remainder ({money.remainder(case)} "
            f"{case.currency}); record it without closeCase.",
            "PartialPaymentCannotClose",
        )
