"""The collection partner's work on an assigned case: accept it, add notes, message the creditor, close it.

Each operator validates its input with the API's request model before it sends anything, so a bad
field fails the task at once (no retry) with the field's wire name. Each is safe to retry:

- a chat message carries an ``Idempotency-Key`` derived from its body (Debitura replays it);
- starting and closing read the case first: a case an earlier try already started (or closed with
  the same code) is reported as such instead of refused, and a case in the wrong state is refused
  before sending, with the rule it breaks;
- a note, which the API takes no key for, is guarded through the task's ``task_state_store``:
  a retry finds the note an interrupted try added instead of adding it again.

Results are ids, references, lifecycle and amounts (wire form): never the message or note text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from debitura_provider.api import DebituraError, NotFoundError
from debitura_provider.api.models import (
    Case,
    CloseCaseRequest,
    CloseCode,
    CreateNoteRequest,
    Lifecycle,
    SendChatRequest,
    StartCaseRequest,
    to_wire,
)
from debitura_provider.compat import AirflowFailException
from debitura_provider.failures import airflow_error
from debitura_provider.links import DebituraCaseLink, push_case_url
from debitura_provider.operators._base import DebituraBaseOperator
from debitura_provider.operators._inputs import amount, money, validated
from debitura_provider.operators._once import SentOnce

if TYPE_CHECKING:
    from debitura_provider.compat import Context


ZERO = Decimal(0)
CLOCK_SKEW = timedelta(minutes=5)
"""How far Debitura's clock may be behind ours when looking for what an interrupted try left."""


class _CaseOperator(DebituraBaseOperator):
    """A task about one case this partner works (``GET /cases/{id}`` and its sub-resources)."""

    template_fields: Sequence[str] = ("case_id",)
    operator_extra_links = (DebituraCaseLink(),)

    def __init__(self, *, case_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case_id = case_id

    def read_case(self, context: Context) -> Case:
        case: Case = self.call("Reading the case", self.hook.get_client().get_case, self.case_id)
        push_case_url(context, self.hook, str(case.id))
        return case


class StartCaseOperator(_CaseOperator):
    """Accept an assigned case (``POST /cases/{id}/start``): Pending Verification becomes Active.

    The welcome message goes to the creditor as the first chat message, signed by ``user_email``
    (one of the partner's portal users). Fees are added to what the debtor owes.

    :param case_id: the case, as assigned to this partner (templated).
    :param welcome_message: 1 to 5,000 characters.
    :param user_email: the portal user who signs the message.
    :param collection_partner_reference: the agency's own reference (at most 128 characters); the
        bank feed matches payments by it.
    :param assigned_user_email: who works the case (default: ``user_email``).
    :param interest_fees: interest added to what the debtor owes, 0 or more.
    :param reminder_fees: reminder fees added the same way, 0 or more.
    :param collection_fees: collection fees added the same way, 0 or more.
    :return: ``{"caseId", "caseReference", "status", "activatedAt", "collectionPartnerReference",
        "alreadyStarted"}``; ``alreadyStarted`` is true when an earlier try (or someone in the portal)
        had started the case with the same reference.
    """

    template_fields: Sequence[str] = (
        "case_id",
        "welcome_message",
        "user_email",
        "collection_partner_reference",
        "assigned_user_email",
        "interest_fees",
        "reminder_fees",
        "collection_fees",
    )

    def __init__(
        self,
        *,
        case_id: str,
        welcome_message: str,
        user_email: str,
        collection_partner_reference: str | None = None,
        assigned_user_email: str | None = None,
        interest_fees: Any = 0,
        reminder_fees: Any = 0,
        collection_fees: Any = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(case_id=case_id, **kwargs)
        self.welcome_message = welcome_message
        self.user_email = user_email
        self.collection_partner_reference = collection_partner_reference
        self.assigned_user_email = assigned_user_email
        self.interest_fees = interest_fees
        self.reminder_fees = reminder_fees
        self.collection_fees = collection_fees

    def work(self, context: Context) -> dict[str, Any]:
        request: StartCaseRequest = validated(
            StartCaseRequest,
            {
                "welcomeMessage": self.welcome_message,
                "userEmail": self.user_email,
                "collectionPartnerReference": self.collection_partner_reference or None,
                "assignedUserEmail": self.assigned_user_email or None,
                "interestFees": amount(self.interest_fees, "interestFees", "start request", default=ZERO),
                "reminderFees": amount(self.reminder_fees, "reminderFees", "start request", default=ZERO),
                "collectionFees": amount(self.collection_fees, "collectionFees", "start request", default=ZERO),
            },
            "start request",
        )
        case = self.read_case(context)
        if case.lifecycle_state is not Lifecycle.PENDING_VERIFICATION:
            if case.date_collection_started is None or not self._started_as_asked(case, request):
                raise AirflowFailException(
                    f"case_id: case {case.id} ({case.reference}) is {case.lifecycle}; only a Pending Verification "
                    "case can be started."
                )
            self.log.info("Case %s (%s) was already started; nothing sent", case.id, case.reference)
            return {
                "caseId": str(case.id),
                "caseReference": case.reference,
                "status": case.lifecycle,
                "activatedAt": case.date_collection_started.isoformat(),
                "collectionPartnerReference": request.collection_partner_reference,
                "alreadyStarted": True,
            }
        response = self.call("Starting the case", self.hook.get_client().start_case, self.case_id, request)
        self.log.info("Started case %s (%s): %s", response.case_id, response.case_reference, response.status)
        return {**to_wire(response), "alreadyStarted": False}

    def _started_as_asked(self, case: Case, request: StartCaseRequest) -> bool:
        """Whether the started case carries the partner reference this task would have given it.

        Cases do not show their partner reference; the lookup by reference does (production cases only).
        """
        wanted = request.collection_partner_reference
        if wanted is None or case.is_test_case:
            return True
        try:
            found = self.hook.get_client().get_case_by_partner_reference(wanted)
        except NotFoundError:
            return False
        except DebituraError as exc:
            raise airflow_error(exc, "Looking the case up by partner reference") from None
        return found.id == case.id


class AddCaseNoteOperator(_CaseOperator):
    """Add a note to a worked case (``POST /cases/{id}/notes``); notes are shared with the creditor.

    :param case_id: the case, as assigned to this partner (templated).
    :param description: 1 to 10,000 characters.
    :param event_date: back-dates the timeline entry (ISO date or timestamp; not in the future).
    :return: ``{"id", "caseReference", "createdAt", "eventDate"}`` of the note.
    """

    template_fields: Sequence[str] = ("case_id", "description", "event_date")
    STATE_KEY = "debitura_case_note"

    def __init__(self, *, case_id: str, description: str, event_date: Any = None, **kwargs: Any) -> None:
        super().__init__(case_id=case_id, **kwargs)
        self.description = description
        self.event_date = event_date

    def work(self, context: Context) -> dict[str, Any]:
        request: CreateNoteRequest = validated(
            CreateNoteRequest,
            {"description": self.description, "eventDate": self.event_date or None},
            "note",
        )
        if request.event_date is not None and request.event_date > datetime.now(timezone.utc) + timedelta(minutes=1):
            raise AirflowFailException("Invalid note (nothing was sent): eventDate: must not be in the future")
        client = self.hook.get_client()
        case_id = str(self.case_id)
        guard = SentOnce(context, self.STATE_KEY, [case_id, request.to_json_types()])
        earlier = guard.result()
        if earlier is not None:
            return earlier
        if guard.interrupted():
            found = self._note_of_earlier_try(client, case_id, request, guard.started_at())
            if found is not None:
                return guard.done(found)
        guard.sending()
        note = self.call("Adding the note", client.add_case_note, case_id, request)
        push_case_url(context, self.hook, case_id)
        wire = to_wire(note)
        result = {k: wire.get(k) for k in ("id", "caseReference", "createdAt", "eventDate")}
        self.log.info("Added note %s to case %s", note.id, case_id)
        return guard.done(result)

    def _note_of_earlier_try(
        self, client: Any, case_id: str, request: CreateNoteRequest, since: datetime
    ) -> dict[str, Any] | None:
        """The timeline item an earlier try's note left, if that try died after sending."""
        timeline = self.call("Reading the timeline", client.get_case_timeline, case_id)
        for item in timeline.items:
            created = item.date is not None and (request.event_date is not None or item.date >= since - CLOCK_SKEW)
            if item.type == "NoteAdded" and created and item.description == request.description:
                self.log.info("An earlier try added this note before failing; not adding it again")
                return {
                    "id": None,
                    "caseReference": None,
                    "createdAt": item.date.isoformat() if item.date else None,
                    "eventDate": request.event_date.isoformat() if request.event_date else None,
                }
        return None


class SendCaseChatOperator(_CaseOperator):
    """Message the creditor in the case's chat (``POST /cases/{id}/chats``).

    The ``Idempotency-Key`` is derived from the case and the body, so a retry within Debitura's
    24 hours returns the first message instead of posting a second.

    :param case_id: the case, as assigned to this partner (templated).
    :param message: 1 to 10,000 characters.
    :param user_email: the portal user the message is from.
    :return: ``{"id", "dateCreated", "roleLabel"}`` of the message (not its text).
    """

    template_fields: Sequence[str] = ("case_id", "message", "user_email")

    def __init__(self, *, case_id: str, message: str, user_email: str, **kwargs: Any) -> None:
        super().__init__(case_id=case_id, **kwargs)
        self.message = message
        self.user_email = user_email

    def work(self, context: Context) -> dict[str, Any]:
        request = validated(SendChatRequest, {"message": self.message, "userEmail": self.user_email}, "chat message")
        chat = self.call("Sending the chat message", self.hook.get_client().send_case_chat, self.case_id, request)
        push_case_url(context, self.hook, str(self.case_id))
        self.log.info("Sent chat message %s on case %s", chat.id, self.case_id)
        wire = to_wire(chat)
        return {k: wire.get(k) for k in ("id", "dateCreated", "roleLabel")}


class CloseCaseOperator(_CaseOperator):
    """Close a worked case with a close code (``POST /cases/{id}/close``).

    Refused before sending: an unknown code, ``Other`` without a comment, ``Paid`` while the case
    still owes, ``PartiallyPaid`` without a payment or with nothing left owing, and a case already
    closed with another code. A case already closed with the same code (an earlier try) is reported.

    :param case_id: the case, as assigned to this partner (templated).
    :param close_code: a name or label: ``Paid``, ``PartiallyPaid``, ``DebtorUntraceable``, ``Other`` ...
    :param comment: at most 2,000 characters; required for ``Other``.
    :return: ``{"caseReference", "closeCode", "closeCodeDescription", "closedAt", "finalOutstandingAmount",
        "totalPayments", "alreadyClosed"}``.
    """

    template_fields: Sequence[str] = ("case_id", "close_code", "comment")

    def __init__(self, *, case_id: str, close_code: str, comment: str | None = None, **kwargs: Any) -> None:
        super().__init__(case_id=case_id, **kwargs)
        self.close_code = close_code
        self.comment = comment

    def work(self, context: Context) -> dict[str, Any]:
        request: CloseCaseRequest = validated(
            CloseCaseRequest, {"closeCode": self.close_code, "comment": self.comment or None}, "close request"
        )
        code = CloseCode.parse(request.close_code)
        case = self.read_case(context)
        if case.lifecycle_state is Lifecycle.CLOSED:
            if case.close_code and CloseCode.parse(case.close_code) is code:
                self.log.info("Case %s was already closed as %s; nothing sent", case.id, code.value)
                return {
                    "caseReference": case.reference,
                    "closeCode": code.api_name,
                    "closeCodeDescription": code.value,
                    "closedAt": case.date_finished.isoformat() if case.date_finished else None,
                    "finalOutstandingAmount": str(case.remainder),
                    "totalPayments": str(_paid_off(case)),
                    "alreadyClosed": True,
                }
            raise AirflowFailException(f"Case {case.id} ({case.reference}) is already closed as {case.close_code}.")
        self._checkmoney(case, code)
        response = self.call("Closing the case", self.hook.get_client().close_case, self.case_id, request)
        self.log.info("Closed case %s as %s", case.id, code.value)
        wire = to_wire(response)
        keep = (
            "caseReference",
            "closeCode",
            "closeCodeDescription",
            "closedAt",
            "finalOutstandingAmount",
            "totalPayments",
        )
        return {**{k: wire.get(k) for k in keep}, "alreadyClosed": False}

    @staticmethod
    def _checkmoney(case: Case, code: CloseCode) -> None:
        """Debitura's rules for the two success codes, checked on the case as it is now."""
        paid, owing = _paid_off(case), money(case.remainder)
        if code is CloseCode.PAID and (paid <= 0 or owing > 0):
            raise AirflowFailException(
                f"close_code: Paid needs payments covering the case; case {case.reference} still owes {owing} "
                f"{case.currency}. Record the payment (with closeCase) or close as PartiallyPaid."
            )
        if code is CloseCode.PARTIALLY_PAID and paid <= 0:
            raise AirflowFailException(f"close_code: PartiallyPaid needs a payment; case {case.reference} has none.")
        if code is CloseCode.PARTIALLY_PAID and owing <= 0:
            raise AirflowFailException(f"close_code: case {case.reference} owes nothing; close it as Paid.")


def _paid_off(case: Case) -> Decimal:
    """What payments took off the case: principal + fees - remainder."""
    return money(case.gross_amount) + money(case.total_added_fees) - money(case.remainder)
