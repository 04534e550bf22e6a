"""The collection partner's payments on a worked case: record, edit, delete.

Recording is made exactly-once through ``Idempotency-Key``: the key is fixed by the task's input
(the case and ``source_id``, say the bank transaction id; else the request body), so a retry, a
re-run of the same DAG run, or a crash after Debitura answered replays the first payment. Debitura
answers the same key with a different body with 422 ``IdempotencyConflict``: that fails the task
for good, with the reason, because it means the input changed (a corrected bank line), not a retry.

Editing and deleting take no key. Both are checked before sending: the payment must be on the case,
and a change that would leave a Paid case owing needs ``reopen_case_if_needed``. Debitura freezes a
payment once its payout has been invoiced (Stripe/QuickBooks) and answers 422; the API shows no
invoiced flag, so that is only known from the answer, and the task fails for good saying so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from debitura_provider.api import BusinessRuleError, DebituraError
from debitura_provider.api.models import (
    Case,
    CloseCode,
    CreatePaymentRequest,
    Lifecycle,
    Payment,
    UpdatePaymentRequest,
    to_wire,
)
from debitura_provider.compat import AirflowFailException
from debitura_provider.failures import airflow_error
from debitura_provider.links import DebituraCaseLink, push_case_url
from debitura_provider.operators._base import DebituraBaseOperator
from debitura_provider.operators._inputs import amount, flag, money, validated
from debitura_provider.operators._once import SentOnce

if TYPE_CHECKING:
    from debitura_provider.compat import Context

INVOICED = (
    "its payout has already been invoiced, and Debitura no longer lets it be edited or deleted. "
    "Record a correcting payment instead, or ask Debitura's support"
)


def payment_idempotency_key(case_id: str, source_id: str) -> str:
    """The ``Idempotency-Key`` of the payment that ``source_id`` (e.g. a bank transaction id) pays on a case."""
    digest = hashlib.sha256(f"{str(case_id).lower()}\n{source_id.strip()}".encode()).hexdigest()
    return f"airflow-debitura-payment-{digest}"


class _PaymentOperator(DebituraBaseOperator):
    """Fields shared by recording and editing a payment."""

    operator_extra_links = (DebituraCaseLink(),)
    what = "payment"

    def __init__(
        self,
        *,
        case_id: str,
        amount: Any,
        payment_date: Any,
        payment_recipient: str = "CollectionPartner",
        commission_payment_status: str | None = None,
        payout_creditor: Any = None,
        payout_collection_partner: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.case_id = case_id
        self.amount = amount
        self.payment_date = payment_date
        self.payment_recipient = payment_recipient
        self.commission_payment_status = commission_payment_status
        self.payout_creditor = payout_creditor
        self.payout_collection_partner = payout_collection_partner

    def _body(self) -> dict[str, Any]:
        what = self.what
        if self.payment_date in (None, "", "None"):
            raise AirflowFailException(
                f"Invalid {what} (nothing was sent): date: the date the money arrived is required"
            )
        return {
            "date": self.payment_date,
            "paymentAmount": amount(self.amount, "paymentAmount", what),
            "paymentRecipient": self.payment_recipient,
            "commissionPaymentStatus": self.commission_payment_status or None,
            "payoutCreditor": amount(self.payout_creditor, "payoutCreditor", what),
            "payoutCollectionPartner": amount(self.payout_collection_partner, "payoutCollectionPartner", what),
        }


class RecordPaymentOperator(_PaymentOperator):
    """Record a payment the agency collected on a case it works (``POST /cases/{id}/payments``).

    :param case_id: the case, as assigned to this partner (templated).
    :param amount: the amount received, in the case's currency (Debitura takes no other).
    :param payment_date: the date the money arrived (ISO date), required.
    :param payment_recipient: ``CollectionPartner`` (the agency's account, the default), ``Creditor``
        (then ``commission_payment_status`` is required) or ``Platform``.
    :param commission_payment_status: ``Paid`` or ``Unpaid``: whether the agency's commission on a
        payment the creditor received has been settled.
    :param payout_creditor: with ``payout_collection_partner``, an explicit split summing to ``amount``
        (within 0.01).
    :param payout_collection_partner: the agency's part of that split; give both or neither.
    :param close_case: close the case as Paid when this payment settles it.
    :param create_unpaid_commission_follow_up: ``False`` stops Debitura's reminder chain (e-mail,
        follow-up task, reminders) for a commission left ``Unpaid``, for an agency that settles
        commission outside Debitura; the payment and payout are recorded either way.
    :param source_id: what this payment is in the agency's books (bank transaction id): the
        ``Idempotency-Key`` is derived from it and the case, so two payments of the same amount on the
        same day stay two, and the same transaction is recorded once however often the task runs.
    :param idempotency_key: a key of your own instead (1 to 255 characters).
    :return: the ``CreatePaymentResponse`` in wire form (``paymentId``, ``remainingAmount``, ``caseClosed`` ...).
    """

    template_fields: Sequence[str] = (
        "case_id",
        "amount",
        "payment_date",
        "payment_recipient",
        "commission_payment_status",
        "payout_creditor",
        "payout_collection_partner",
        "close_case",
        "source_id",
        "idempotency_key",
    )

    def __init__(
        self,
        *,
        case_id: str,
        amount: Any,
        payment_date: Any,
        payment_recipient: str = "CollectionPartner",
        commission_payment_status: str | None = None,
        payout_creditor: Any = None,
        payout_collection_partner: Any = None,
        close_case: Any = False,
        create_unpaid_commission_follow_up: bool = True,
        source_id: str | None = None,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            case_id=case_id,
            amount=amount,
            payment_date=payment_date,
            payment_recipient=payment_recipient,
            commission_payment_status=commission_payment_status,
            payout_creditor=payout_creditor,
            payout_collection_partner=payout_collection_partner,
            **kwargs,
        )
        self.close_case = close_case
        self.create_unpaid_commission_follow_up = create_unpaid_commission_follow_up
        self.source_id = source_id
        self.idempotency_key = idempotency_key

    def work(self, context: Context) -> dict[str, Any]:
        body = {
            **self._body(),
            "closeCase": flag(self.close_case, "closeCase", "payment"),
            "createUnpaidCommissionFollowUp": self.create_unpaid_commission_follow_up,
        }
        request: CreatePaymentRequest = validated(CreatePaymentRequest, body, "payment")
        case_id = str(self.case_id)
        key = self.idempotency_key or None
        if key is None and self.source_id not in (None, "", "None"):
            key = payment_idempotency_key(case_id, str(self.source_id))
        client = self.hook.get_client()
        try:
            response = client.record_payment(case_id, request, idempotency_key=key)
        except BusinessRuleError as exc:
            if "IdempotencyConflict" in exc.error_types:
                which = f"source_id {self.source_id}" if self.source_id else "its Idempotency-Key"
                raise AirflowFailException(
                    f"Recording the payment failed: this payment ({which}) was recorded before with a different "
                    f"amount, date or split; Debitura keeps the first. {exc}"
                ) from None
            raise airflow_error(exc, "Recording the payment") from None
        except DebituraError as exc:
            raise airflow_error(exc, "Recording the payment") from None
        push_case_url(context, self.hook, case_id)
        self.log.info(
            "Payment %s of %s recorded on case %s; remaining %s%s",
            response.payment_id,
            response.payment_amount,
            response.case_reference,
            response.remaining_amount,
            " (case closed)" if response.case_closed else "",
        )
        return to_wire(response)


class UpdatePaymentOperator(_PaymentOperator):
    """Edit a recorded payment (``PUT /cases/{id}/payments/{paymentId}``).

    Refused before sending: a payment that is not on the case, and a change that would leave a Paid
    case owing unless ``reopen_case_if_needed`` (then Debitura reopens the case to Active).
    The payment's fields (``amount``, ``payment_date``, ``payment_recipient``, ``commission_payment_status``,
    ``payout_creditor``, ``payout_collection_partner``) are those of ``RecordPaymentOperator``
    and replace the payment's; ``Platform`` is not a recipient an edit can set.

    :param case_id: the case the payment is on (templated).
    :param payment_id: the payment to edit; one not on the case is refused before sending.
    :param reopen_case_if_needed: allow an edit that leaves a Paid case owing; Debitura then
        reopens it to Active. Without it such an edit is refused rather than leaving a closed case owing.
    :return: the payment as Debitura now has it (wire form).
    """

    template_fields: Sequence[str] = (
        "case_id",
        "payment_id",
        "amount",
        "payment_date",
        "payment_recipient",
        "commission_payment_status",
        "payout_creditor",
        "payout_collection_partner",
        "reopen_case_if_needed",
    )
    what = "payment update"

    def __init__(self, *, case_id: str, payment_id: str, reopen_case_if_needed: Any = False, **kwargs: Any) -> None:
        super().__init__(case_id=case_id, **kwargs)
        self.payment_id = payment_id
        self.reopen_case_if_needed = reopen_case_if_needed

    def work(self, context: Context) -> dict[str, Any]:
        reopen = flag(self.reopen_case_if_needed, "reopenCaseIfNeeded", self.what)
        request: UpdatePaymentRequest = validated(
            UpdatePaymentRequest, {**self._body(), "reopenCaseIfNeeded": reopen}, self.what
        )
        client = self.hook.get_client()
        case, payment = _case_and_payment(self, client, str(self.payment_id))
        if payment is None:
            raise AirflowFailException(f"paymentId: case {case.reference} has no payment {self.payment_id}")
        push_case_url(context, self.hook, str(case.id))
        owing_after = money(case.remainder) + money(payment.gross_amount) - money(request.payment_amount)
        _check_reopen(case, owing_after, reopen)
        try:
            updated = client.update_payment(str(case.id), str(payment.id), request)
        except BusinessRuleError as exc:
            raise AirflowFailException(
                f"Editing payment {payment.id} on case {case.reference} failed: {INVOICED}. Debitura said: {exc}"
            ) from None
        except DebituraError as exc:
            raise airflow_error(exc, "Editing the payment") from None
        self.log.info("Payment %s on case %s is now %s", updated.id, case.reference, updated.gross_amount)
        return to_wire(updated)


class DeletePaymentOperator(DebituraBaseOperator):
    """Reverse a recorded payment (``DELETE /cases/{id}/payments/{paymentId}``).

    Refused before sending: a payment that is not on the case (unless an earlier try of this task
    deleted it), and deleting from a Paid case unless ``reopen_case_if_needed``.

    :param case_id: the case the payment is on (templated).
    :param payment_id: the payment to reverse.
    :param reopen_case_if_needed: allow deleting from a Paid case; Debitura then reopens it to Active.
    :return: ``{"caseId", "paymentId", "deleted", "alreadyDeleted"}``.
    """

    template_fields: Sequence[str] = ("case_id", "payment_id", "reopen_case_if_needed")
    operator_extra_links = (DebituraCaseLink(),)
    STATE_KEY = "debitura_payment_delete"

    def __init__(self, *, case_id: str, payment_id: str, reopen_case_if_needed: Any = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case_id = case_id
        self.payment_id = payment_id
        self.reopen_case_if_needed = reopen_case_if_needed

    def work(self, context: Context) -> dict[str, Any]:
        reopen = flag(self.reopen_case_if_needed, "reopenCaseIfNeeded", "payment deletion")
        client = self.hook.get_client()
        guard = SentOnce(context, self.STATE_KEY, [str(self.case_id), str(self.payment_id)])
        earlier = guard.result()
        if earlier is not None:
            return earlier
        case, payment = _case_and_payment(self, client, str(self.payment_id))
        push_case_url(context, self.hook, str(case.id))
        outcome = {"caseId": str(case.id), "paymentId": str(self.payment_id), "deleted": True}
        if payment is None:
            if guard.interrupted():
                self.log.info("An earlier try deleted payment %s before failing", self.payment_id)
                return guard.done({**outcome, "alreadyDeleted": True})
            raise AirflowFailException(f"paymentId: case {case.reference} has no payment {self.payment_id}")
        _check_reopen(case, money(case.remainder) + money(payment.gross_amount), reopen)
        guard.sending()
        try:
            client.delete_payment(str(case.id), str(payment.id), reopen_case_if_needed=reopen)
        except BusinessRuleError as exc:
            raise AirflowFailException(
                f"Deleting payment {payment.id} on case {case.reference} failed: {INVOICED}. Debitura said: {exc}"
            ) from None
        except DebituraError as exc:
            raise airflow_error(exc, "Deleting the payment") from None
        self.log.info("Deleted payment %s on case %s", payment.id, case.reference)
        return guard.done({**outcome, "alreadyDeleted": False})


def _case_and_payment(operator: DebituraBaseOperator, client: Any, payment_id: str) -> tuple[Case, Payment | None]:
    case_id = str(operator.case_id)  # type: ignore[attr-defined]
    case: Case = operator.call("Reading the case", client.get_case, case_id)
    payments: list[Payment] = operator.call("Reading the payments", client.get_case_payments, case_id)
    return case, next((p for p in payments if str(p.id) == payment_id.strip().lower()), None)


def _check_reopen(case: Case, owing_after: Decimal, reopen: bool) -> None:
    """Debitura answers 409 when a change leaves a Paid case owing and reopening was not allowed."""
    paid = (
        case.lifecycle_state is Lifecycle.CLOSED
        and case.close_code is not None
        and (CloseCode.parse(case.close_code) is CloseCode.PAID)
    )
    if paid and owing_after > 0 and not reopen:
        raise AirflowFailException(
            f"reopenCaseIfNeeded: case {case.reference} is closed as Paid and would owe {owing_after} {case.currency} "
            "after this change; set reopen_case_if_needed to reopen it to Active."
        )
