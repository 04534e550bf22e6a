"""Recording a payment on a test case, made safe to retry although the API takes no idempotency key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from debitura_provider.api import DebituraClient, RequestValidationError, to_wire
from debitura_provider.api.models import Case, Lifecycle, Payment, TestPaymentRequest, TestPaymentResponse
from debitura_provider.api.money import same_amount
from debitura_provider.coercion import as_amount, as_bool
from debitura_provider.compat import AirflowFailException, task_state_store
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.links import DebituraCaseLink, push_case_url
from debitura_provider.operators._base import DebituraBaseOperator

if TYPE_CHECKING:
    from decimal import Decimal

    from debitura_provider.compat import Context


class RecordTestPaymentOperator(DebituraBaseOperator):
    """Record a payment on an ``isTest`` managed case (what the integration-test loop needs).

    A production case is refused before anything is sent. The API takes no ``Idempotency-Key``
    for this call, so retries are made safe here instead: before sending, the task records in its
    ``task_state_store`` (which all tries of a task instance share) the payment ids already on the
    case; after sending, the response. A later try returns the stored response, or, if the earlier
    try died between sending and storing, finds the payment it made (new id, same amount and date)
    and returns that instead of paying again.

    :param case_id: the test case to pay on (templated).
    :param amount: the payment amount in the case's currency (templated; a number or its text,
        read exactly as a ``Decimal``).
    :param payment_date: the payment's date (templated; default: today, UTC).
    :param close_case: close the case as Paid when the payment settles it (templated; a bool or
        true/false text).
    :param debitura_conn_id: the ``debitura`` connection.
    :return: the payment response in wire form (``paymentId``, ``remainingAmount``, ``caseClosed`` ...).
    """

    template_fields: Sequence[str] = ("case_id", "amount", "payment_date", "close_case")
    operator_extra_links = (DebituraCaseLink(),)

    STATE_KEY = "debitura_test_payment"

    def __init__(
        self,
        *,
        case_id: str,
        amount: Decimal | float | str,
        payment_date: str | date | None = None,
        close_case: bool | str = False,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(debitura_conn_id=debitura_conn_id, **kwargs)
        self.case_id = case_id
        self.amount = amount
        self.payment_date = payment_date
        self.close_case = close_case

    def work(self, context: Context) -> dict[str, Any]:
        body = to_wire(self._request(self.payment_date or _today()))  # amounts as exact decimal strings
        client = self.hook.get_client()
        case: Case = self.call("Reading the case", client.get_managed_case, self.case_id)
        case_id = str(case.id)
        push_case_url(context, self.hook, case_id)
        if not case.is_test_case:
            raise AirflowFailException(
                f"Refusing to record a test payment on case {case_id} ({case.reference}): it is a production "
                "case (isTestCase is false). Test payments are only for cases created with isTest."
            )
        store = task_state_store(context)
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
            before = self.call("Reading the payments", client.get_managed_case_payments, case_id)
            store.set(self.STATE_KEY, {**attempt, "phase": "sending", "paymentIdsBefore": [str(p.id) for p in before]})
        response = self._send(client, case_id, body)
        result = response.model_dump(mode="json", by_alias=True)
        if store is not None:
            store.set(self.STATE_KEY, {**attempt, "phase": "done", "response": result})
        self.log.info("Recorded %s on %s; remaining %s", body["paymentAmount"], case_id, result["remainingAmount"])
        return result

    def _send(self, client: DebituraClient, case_id: str, body: dict[str, Any]) -> TestPaymentResponse:
        """The one non-idempotent request; kept apart so that the guard around it is easy to see."""
        return self.call("Recording the test payment", client.record_test_payment, case_id, body)

    def _request(self, when: str | date) -> TestPaymentRequest:
        fields = {
            "date": when,
            "paymentAmount": self.coerce(as_amount, self.amount, "amount"),
            "closeCase": self.coerce(as_bool, self.close_case, "close_case"),
        }
        try:
            return TestPaymentRequest.model_validate(fields)
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
        payments: list[Payment] = self.call("Reading the payments", client.get_managed_case_payments, str(case.id))
        for payment in payments:
            same_day = payment.date is not None and payment.date.date().isoformat() == request["date"]
            paid = same_amount(payment.gross_amount, str(request["paymentAmount"]), case.currency)
            if str(payment.id) not in known and same_day and paid:
                self.log.info("An earlier try recorded payment %s before failing; not paying again", payment.id)
                fresh: Case = self.call("Reading the case", client.get_managed_case, str(case.id))
                return TestPaymentResponse(
                    payment_id=payment.id,
                    case_reference=fresh.reference,
                    date=payment.date,
                    payment_amount=payment.gross_amount,
                    case_closed=fresh.lifecycle_state is Lifecycle.CLOSED,
                    remaining_amount=fresh.remainder,
                ).model_dump(mode="json", by_alias=True)
        return None


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()
