"""Lifecycle rules: verification, start, close, reopen and the chat side effects they have.

Used alike by the API handlers, the test endpoints and the simulated partners, so a case moves the same
way whoever moves it, with the same timeline items and webhooks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from debitura_provider.api.models import CloseCode, Lifecycle, StartCaseRequest
from debitura_provider.sandbox.domain import events, money
from debitura_provider.sandbox.domain.clock import midnight
from debitura_provider.sandbox.domain.problems import bad_request, invalid_field
from debitura_provider.sandbox.domain.runtime import SYSTEM, Sandbox, partner_actor
from debitura_provider.sandbox.domain.state import Actor, CaseRecord, ChatRecord, Partner, User

EXCLUSIVE_PERIOD = timedelta(days=180)
"""A started case's exclusive period (six months for a standard pre-legal engagement)."""
PAYABLE = (Lifecycle.ACTIVE, Lifecycle.PAUSED, Lifecycle.NEEDS_ADDITIONAL_DETAILS)
"""Where payments may be recorded (the portal's rule; assumed for the API)."""
ROLE_LABELS = {0: "Partner", 1: "Creditor", 2: "Managed by partner"}
CASE_NEVER_STARTED = "Case never started"
INVALID_CASE_DATA = "Invalid Case Data"
"""System close codes (API-NOTES §3.3): only Debitura sets them."""


def verify(sb: Sandbox, case: CaseRecord) -> None:
    """Debitura's internal verification clears: the partner sees the case (``case.assigned``)."""
    if case.lifecycle is not Lifecycle.PENDING_VERIFICATION_INTERNAL:
        return
    partner = sb.partner(case, "collection")
    case.lifecycle = Lifecycle.PENDING_VERIFICATION
    sb.record(
        case,
        "CaseAssigned",
        f"Case assigned to {partner.name}",
        "Debitura verified the case and assigned it to the collection partner.",
    )
    sb.dispatcher.publish(case, "case.assigned", events.case_assigned(case))


def resolve_user(partner: Partner, field: str, email: str | None, user_id: object) -> User | None:
    """A partner's user named by e-mail (preferred) or by the deprecated uuid; 400 if it is not one of theirs."""
    if email is None and user_id is None:
        return None
    user = partner.user_by(email=email, user_id=user_id)  # type: ignore[arg-type]
    if user is None:
        raise invalid_field(field, f"{email or user_id} is not a user of {partner.name} (see GET /users)")
    return user


def start(sb: Sandbox, case: CaseRecord, partner: Partner, request: StartCaseRequest) -> User:
    """Accept a case: ``Pending Verification`` → ``Active``, welcome message to the creditor."""
    if case.lifecycle is not Lifecycle.PENDING_VERIFICATION:
        raise bad_request(
            f"The case is {case.lifecycle.value}; only a Pending Verification case can be started.", "InvalidLifecycle"
        )
    author = resolve_user(partner, "userEmail", request.user_email, request.user_id)
    assigned = resolve_user(partner, "assignedUserEmail", request.assigned_user_email, request.assigned_user_id)
    assert author is not None  # the request model requires one of the two
    case.interest_fees = money.cents(request.interest_fees)
    case.reminder_fees = money.cents(request.reminder_fees)
    case.collection_fees = money.cents(request.collection_fees)
    case.collection_partner_reference = request.collection_partner_reference
    case.assigned_user = assigned or author
    activate(sb, case, partner_actor(author), "accepted by the collection partner")
    post_chat(sb, case, 0, author, request.welcome_message)
    return author


def activate(sb: Sandbox, case: CaseRecord, actor: Actor, why: str) -> None:
    """Collection starts: Active, the Pre-legal engagement and its exclusive period begin."""
    now = sb.now()
    case.date_collection_started = case.date_collection_started or now
    case.engagement_phase = case.engagement_phase or "Pre-legal"
    sb.set_lifecycle(case, Lifecycle.ACTIVE, actor, why)


def post_chat(sb: Sandbox, case: CaseRecord, role: int, user: User, message: str) -> ChatRecord:
    chat = ChatRecord(
        id=sb.store.child_id(case),
        date_created=sb.now(),
        role=role,
        role_label=ROLE_LABELS[role],
        message=message,
        user=user,
    )
    case.chats.append(chat)
    actor = partner_actor(user) if role == 0 else Actor(type="Creditor user", name=user.name)
    sb.record(case, "ChatMessage", f"Message from {chat.role_label.lower()}", message[:200], actor)
    sb.dispatcher.publish(case, "chat.created", events.chat_created(case, chat))
    return chat


def check_close(case: CaseRecord, code: CloseCode) -> None:
    """The close-code rules of ``POST /cases/{id}/close``."""
    if case.lifecycle is Lifecycle.MERGED:
        raise bad_request("The case was merged into another case and cannot be closed.", "InvalidLifecycle")
    if case.lifecycle is Lifecycle.CLOSED:
        raise bad_request(
            f"The case is already closed ({case.close_label or 'Closed'}).",
            "InvalidLifecycle",
        )
    paid, owed, count = money.total_paid(case), money.total_owed(case), len(case.live_payments)
    if code is CloseCode.PAID and (count == 0 or paid < owed):
        raise bad_request(
            f"Paid needs at least one payment and payments ({paid}) of at least the outstanding "
            f"amount ({owed}); close as PartiallyPaid instead.",
            "InvalidCloseCode",
        )
    if code is CloseCode.PARTIALLY_PAID and (count == 0 or paid >= owed):
        reason = "at least one payment" if count == 0 else f"payments ({paid}) below the outstanding amount ({owed})"
        raise bad_request(f"PartiallyPaid needs {reason}.", "InvalidCloseCode")


def close(
    sb: Sandbox,
    case: CaseRecord,
    code: CloseCode,
    comment: str | None,
    by: User | None,
    actor: Actor,
    *,
    checked: bool = True,
) -> None:
    """Close the case: ``case.updated`` then ``case.closed``. Only the test driver skips the payment checks."""
    if checked:
        check_close(case, code)
    case.close_code = code
    case.close_comment = comment
    case.closed_by = by
    case.date_finished = sb.now()
    case.needs_info = False
    sb.set_lifecycle(case, Lifecycle.CLOSED, actor, code.value)
    sb.record(
        case, "CaseClosed", f"Case closed: {code.value}", comment or f"Closed with close code {code.value}.", actor
    )
    sb.dispatcher.publish(case, "case.closed", events.case_closed(case))


def system_close(sb: Sandbox, case: CaseRecord, label: str, why: str) -> None:
    """Debitura closes the case with a System close code, which no partner can set through the API."""
    case.close_code = None
    case.system_close_code = label
    case.close_comment = why
    case.closed_by = None
    case.date_finished = sb.now()
    case.needs_info = False
    sb.set_lifecycle(case, Lifecycle.CLOSED, SYSTEM, label)
    sb.record(case, "CaseClosed", f"Case closed: {label}", why)
    sb.dispatcher.publish(case, "case.closed", events.case_closed(case))


def reassign(sb: Sandbox, case: CaseRecord, declined_by: Partner, actor: Actor) -> Partner | None:
    """The partner declines a Pending Verification case; Debitura offers it to the next routable partner that
    covers the debtor. None when nobody else does (the case is then closed as never started)."""
    others = [
        p
        for p in sb.store.partners.values()
        if p.routable and p.id != declined_by.id and p.covers(case.jurisdiction) and p.id not in case.declined_by
    ]
    case.declined_by.append(declined_by.id)
    sb.record(
        case, "CaseDeclined", f"Declined by {declined_by.name}", "The collection partner declined the case.", actor
    )
    if not others:
        system_close(sb, case, CASE_NEVER_STARTED, "No other collection partner covering the debtor took the case.")
        return None
    chosen = others[0]
    case.collection_partner_id = chosen.id
    case.assigned_user = None
    sb.record(
        case,
        "CaseAssigned",
        f"Case assigned to {chosen.name}",
        f"Debitura reassigned the case after {declined_by.name} declined it.",
    )
    sb.dispatcher.publish(case, "case.assigned", events.case_assigned(case))
    return chosen


def merge(sb: Sandbox, case: CaseRecord) -> None:
    """Debitura folds the case into another case of the same debtor (the other case is not modelled)."""
    case.needs_info = False
    case.date_finished = sb.now()
    sb.set_lifecycle(case, Lifecycle.MERGED, SYSTEM, "merged into another case of the same debtor")


def reopen(sb: Sandbox, case: CaseRecord, actor: Actor, why: str) -> None:
    """A Paid case that owes again goes back to Active (``case.updated``)."""
    case.close_code = None
    case.system_close_code = None
    case.close_comment = None
    case.closed_by = None
    case.date_finished = None
    sb.set_lifecycle(case, Lifecycle.ACTIVE, actor, why)


def require_open(case: CaseRecord, action: str) -> None:
    if not case.is_open:
        raise bad_request(f"The case is {case.lifecycle.value}; {action} is not possible on it.", "InvalidLifecycle")


def require_payable(case: CaseRecord) -> None:
    if case.lifecycle not in PAYABLE:
        hint = " (start it first, or advance a test case with POST /test/cases/{id}/advance)" if case.is_open else ""
        raise bad_request(
            f"The case is {case.lifecycle.value}; payments can be recorded on Active, Paused or "
            f"More Info Required cases{hint}.",
            "InvalidLifecycle",
        )


def exclusive_period(case: CaseRecord) -> tuple[datetime, list[tuple[datetime, datetime]]] | None:
    """End of the exclusive period and its extensions ``(event date, new end)``; None before collection starts.

    Each payment extends the period to six months after it (assumed rule for the "Payment" extension type).
    """
    if case.date_collection_started is None:
        return None
    end = case.date_collection_started + EXCLUSIVE_PERIOD
    extensions = []
    for payment in sorted(case.live_payments, key=lambda p: p.date_created):
        candidate = midnight(payment.date) + EXCLUSIVE_PERIOD
        if candidate > end:
            end = candidate
            extensions.append((payment.date_created, end))
    return end, extensions


def exclusive_period_end(case: CaseRecord) -> datetime | None:
    period = exclusive_period(case)
    return period[0] if period else None
