"""Simulated work on cases: Debitura's internal verification, and collection partners working production cases.

Each case follows a plan drawn from a generator seeded with the sandbox seed and the case id, so the
same case in the same run always takes the same course: accepted after half a day to two days, maybe
a creditor reply, a request for more information or a pause, then one of: paid in full, paid in
instalments, partly paid and closed, or closed without payment. Delays are sandbox time; at the default
speed (one sandbox day per real second) the first payment arrives within about 3 to 20 real seconds.

Only the plan's position (``sim_step``, ``sim_due``) is stored, so a restarted sandbox picks up where it
stopped. A step that no longer fits the case (someone else moved it) ends the plan.
"""

from __future__ import annotations

import logging
import random
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

from debitura_provider.api.models import CloseCode, Lifecycle, StartCaseRequest, UpdatePaymentRequest
from debitura_provider.sandbox.domain import lifecycle, money, payments
from debitura_provider.sandbox.domain.clock import DAY, HOUR, rng
from debitura_provider.sandbox.domain.problems import ApiProblem, bad_request
from debitura_provider.sandbox.domain.runtime import Sandbox, creditor_actor, partner_actor
from debitura_provider.sandbox.domain.state import Actor, CaseRecord, User, ValidationItem

log = logging.getLogger("debitura_provider.sandbox.simulation")

TEST_CASE_VERIFICATION = 300.0
"""Sandbox seconds until a test case clears internal verification."""

NO_PAYMENT_CODES = (
    CloseCode.DEBTOR_UNTRACEABLE,
    CloseCode.PRE_LEGAL_EXHAUSTED_NO_PAYMENT,
    CloseCode.DEBTOR_INSOLVENT_BANKRUPT,
    CloseCode.DISPUTED_LEGAL_ACTION_DECLINED_BY_CLIENT,
)


class Step(NamedTuple):
    after: float  # sandbox seconds after the previous step
    action: str
    share: float = 0.0  # for "pay": share of the remainder (1.0 settles and closes)
    code: CloseCode | None = None


def plan(seed: int, case: CaseRecord, works: bool, mix: str = "default") -> list[Step]:
    """The course a case takes; ``works`` is whether a simulated partner collects it.

    The ``"varied"`` mix draws its extra turns from the same generator only after the default draws,
    so a case's default course stays what it always was, and adds: a case that fails verification
    (Invalid Case Data), a request for information while the case is Pending Verification, a partner
    declining (the case is reassigned, or closed as never started), a partner that never starts it,
    fees added at the start, a merge, and payment corrections (an edit or a deletion).
    """
    chance = rng(seed, "plan", case.id)
    if case.is_test:
        return [Step(TEST_CASE_VERIFICATION, "verify")]
    varied = rng(seed, "varied", case.id) if mix == "varied" else None
    if varied is not None and varied.random() < 0.06:
        return [Step(chance.uniform(1 * HOUR, 6 * HOUR), "reject")]
    steps = [Step(chance.uniform(1 * HOUR, 6 * HOUR), "verify")]
    if not works:
        return steps
    if varied is not None:
        if varied.random() < 0.2:
            steps += [
                Step(varied.uniform(0.2 * DAY, 1 * DAY), "request_info"),
                Step(varied.uniform(1 * DAY, 3 * DAY), "info_provided"),
            ]
        if varied.random() < 0.2:
            steps.append(Step(varied.uniform(0.2 * DAY, 1 * DAY), "decline"))
        if varied.random() < 0.05:
            return [*steps, Step(varied.uniform(10 * DAY, 20 * DAY), "never_started")]
    steps.append(
        Step(chance.uniform(0.5 * DAY, 2 * DAY), "start_with_fees" if varied and varied.random() < 0.4 else "start")
    )
    if chance.random() < 0.4:
        steps.append(Step(chance.uniform(0.2 * DAY, 1 * DAY), "creditor_reply"))
    if chance.random() < 0.15 and varied is None:
        steps += [
            Step(chance.uniform(1 * DAY, 2 * DAY), "request_info"),
            Step(chance.uniform(1 * DAY, 3 * DAY), "info_provided"),
        ]
    if varied is not None and varied.random() < 0.08:
        return [*steps, Step(varied.uniform(2 * DAY, 10 * DAY), "merge")]
    outcome = chance.choices(("full", "instalments", "partial", "none"), weights=(40, 25, 15, 20))[0]
    first = chance.uniform(2 * DAY, 10 * DAY)
    if outcome == "full":
        steps.append(Step(first, "pay", 1.0))
    elif outcome == "instalments":
        count = chance.randint(2, 4)
        for n in range(count - 1):
            if chance.random() < 0.3:
                steps += [
                    Step(chance.uniform(1 * DAY, 3 * DAY), "pause"),
                    Step(chance.uniform(2 * DAY, 5 * DAY), "resume"),
                ]
            steps.append(Step(first if n == 0 else chance.uniform(5 * DAY, 15 * DAY), "pay", 1 / (count - n)))
            if varied is not None and n == 0 and varied.random() < 0.5:
                steps.append(
                    Step(varied.uniform(0.5 * DAY, 2 * DAY), varied.choice(("edit_payment", "delete_payment")))
                )
        steps.append(Step(chance.uniform(5 * DAY, 15 * DAY), "pay", 1.0))
    elif outcome == "partial":
        steps.append(Step(first, "pay", chance.uniform(0.2, 0.5)))
        if varied is not None and varied.random() < 0.5:
            steps.append(Step(varied.uniform(0.5 * DAY, 2 * DAY), varied.choice(("edit_payment", "delete_payment"))))
        if chance.random() < 0.5:
            steps.append(Step(chance.uniform(5 * DAY, 15 * DAY), "pay", chance.uniform(0.2, 0.5)))
        steps.append(Step(chance.uniform(10 * DAY, 30 * DAY), "close", code=CloseCode.PARTIALLY_PAID))
    else:
        if chance.random() < 0.3:
            steps.append(Step(chance.uniform(10 * DAY, 20 * DAY), "legal"))
        steps.append(Step(chance.uniform(20 * DAY, 45 * DAY), "close", code=chance.choice(NO_PAYMENT_CODES)))
    return steps


class Simulator:
    """Runs every case's plan on the sandbox's timers."""

    def __init__(self, sb: Sandbox) -> None:
        self._sb = sb
        sb.on_start(self._resume)

    def track(self, case: CaseRecord) -> None:
        """Start a new case on its plan."""
        case.sim_step = 0
        self._next(case)

    def forget(self, case_id: UUID) -> None:
        self._sb.timers.cancel(("sim", case_id))

    def _resume(self) -> None:
        for case in self._sb.store.cases.values():
            if case.sim_due is not None:
                self._arm(case.id, case.sim_due)

    def _plan(self, case: CaseRecord) -> list[Step]:
        partner = self._sb.store.partners[case.collection_partner_id]
        works = self._sb.config.simulate and partner.simulated
        return plan(self._sb.store.ids.seed, case, works, self._sb.config.outcomes)

    def _next(self, case: CaseRecord) -> None:
        steps = self._plan(case)
        if case.sim_step >= len(steps):
            case.sim_due = None
        else:
            case.sim_due = self._sb.clock.due(steps[case.sim_step].after)
            self._arm(case.id, case.sim_due)
        self._sb.store.touch(case)

    def _arm(self, case_id: UUID, due: float) -> None:
        self._sb.timers.at(("sim", case_id), due, lambda: self._run(case_id))

    def _run(self, case_id: UUID) -> None:
        case = self._sb.store.cases.get(case_id)
        if case is None:
            return
        steps = self._plan(case)
        step = steps[case.sim_step]
        try:
            self._do(case, step)
            case.sim_step += 1
        except ApiProblem as exc:
            log.info("Simulated work on case %s stops at %s: %s", case.reference, step.action, exc.body.get("message"))
            case.sim_step = len(steps)
        except Exception:
            log.exception("Simulated work on case %s failed at %s; it stops there", case.reference, step.action)
            case.sim_step = len(steps)
        self._next(case)

    def _do(self, case: CaseRecord, step: Step) -> None:
        sb = self._sb
        partner = sb.store.partners[case.collection_partner_id]
        user = partner.users[0]
        actor = partner_actor(user)
        if step.action == "verify":
            lifecycle.verify(sb, case)
        elif step.action == "reject":
            _expect(case, Lifecycle.PENDING_VERIFICATION_INTERNAL)
            lifecycle.system_close(
                sb, case, lifecycle.INVALID_CASE_DATA, "Debitura's verification found the case data invalid."
            )
        elif step.action == "decline":
            _expect(case, Lifecycle.PENDING_VERIFICATION)
            lifecycle.reassign(sb, case, partner, actor)
        elif step.action == "never_started":
            _expect(case, Lifecycle.PENDING_VERIFICATION)
            lifecycle.system_close(
                sb, case, lifecycle.CASE_NEVER_STARTED, "The collection partner did not start the case."
            )
        elif step.action in ("start", "start_with_fees"):
            welcome = (
                f"Hello, this is {partner.name}. We have taken over case {case.reference} and will contact "
                "the debtor today. We will keep you posted here."
            )
            fees = (
                _start_fees(rng(sb.store.ids.seed, "fees", case.id), case) if step.action == "start_with_fees" else {}
            )
            request = StartCaseRequest(welcome_message=welcome, user_email=user.email, **fees)
            lifecycle.start(sb, case, partner, request)
        elif step.action == "merge":
            lifecycle.require_open(case, "merging")
            lifecycle.merge(sb, case)
        elif step.action == "edit_payment":
            self._correct(case, actor, delete=False)
        elif step.action == "delete_payment":
            self._correct(case, actor, delete=True)
        elif step.action == "creditor_reply":
            lifecycle.require_open(case, "a creditor reply")
            lifecycle.post_chat(sb, case, 1, _creditor_user(case), "Thank you, please keep us updated.")
        elif step.action == "request_info":
            self._request_info(case, actor)
        elif step.action == "info_provided":
            self._info_provided(case)
        elif step.action == "pause":
            _expect(case, Lifecycle.ACTIVE)
            sb.set_lifecycle(case, Lifecycle.PAUSED, actor, "the debtor promised to pay")
        elif step.action == "resume":
            _expect(case, Lifecycle.PAUSED)
            sb.set_lifecycle(case, Lifecycle.ACTIVE, actor, "collection resumed")
        elif step.action == "legal":
            lifecycle.require_open(case, "legal escalation")
            case.engagement_phase = "Legal"
            sb.record(
                case,
                "EngagementPhaseChanged",
                "Engagement phase: Legal",
                "The collection partner escalated the case to legal proceedings.",
                actor,
            )
        elif step.action == "pay":
            self._pay(case, step, user)
        else:
            assert step.code is not None
            comment = None if step.code is CloseCode.PARTIALLY_PAID else "Closed by the collection partner."
            lifecycle.close(sb, case, step.code, comment, user, actor)

    def _correct(self, case: CaseRecord, actor: Actor, *, delete: bool) -> None:
        """The partner corrects its latest payment: deletes it (``payment.deleted``) or edits its amount down."""
        live = sorted(case.live_payments, key=lambda p: p.date_created)
        if not live:
            raise bad_request("no payment to correct", "NothingToCorrect")
        latest = live[-1]
        if delete:
            payments.delete(self._sb, case, latest, False, actor)
            return
        amount = max(money.cents(latest.amount * Decimal("0.9")), money.CENT)
        request = UpdatePaymentRequest.model_validate(
            {
                "date": latest.date.isoformat(),
                "paymentAmount": str(amount),
                "paymentRecipient": latest.recipient,
            }
        )
        payments.update(self._sb, case, latest, request, actor)

    def _request_info(self, case: CaseRecord, actor: Actor) -> None:
        """More Info Required: from Pending Verification in the varied mix (the help centre's place for it,
        API-NOTES §3.2), from Active in the default one; the case goes back where it came from."""
        if case.lifecycle is not Lifecycle.PENDING_VERIFICATION:
            _expect(case, Lifecycle.ACTIVE)
        case.info_return = case.lifecycle
        case.needs_info = True
        case.validation_items = [
            ValidationItem(resolution_area="DebtorDetails", description="Please confirm the debtor's current address.")
        ]
        self._sb.set_lifecycle(
            case, Lifecycle.NEEDS_ADDITIONAL_DETAILS, actor, "the partner needs the debtor's current address"
        )

    def _info_provided(self, case: CaseRecord) -> None:
        _expect(case, Lifecycle.NEEDS_ADDITIONAL_DETAILS)
        case.needs_info = False
        case.validation_items = []
        case.creditor_responded_at = self._sb.now()
        back, case.info_return = case.info_return or Lifecycle.ACTIVE, None
        self._sb.set_lifecycle(case, back, creditor_actor(case), "the creditor supplied the information")

    def _pay(self, case: CaseRecord, step: Step, user: User) -> None:
        chance = rng(self._sb.store.ids.seed, "payment", case.id, case.sim_step)
        left = money.remainder(case)
        if left <= 0:
            raise bad_request("nothing left to collect", "NothingOutstanding")
        settles = step.share >= 1.0
        amount = left if settles else max(money.cents(left * Decimal(str(step.share))), money.CENT)
        to_partner = chance.random() < 0.5
        new = payments.NewPayment(
            date=self._sb.now().date(),
            amount=amount,
            recipient="CollectionPartner" if to_partner else "Creditor",
            commission_payment_status="Paid" if to_partner or chance.random() < 0.5 else "Unpaid",
        )
        payments.record(self._sb, case, new, settles, user, partner_actor(user))


def _start_fees(chance: random.Random, case: CaseRecord) -> dict[str, Decimal]:
    """Interest, reminder and collection fees a partner adds when it starts a case (assumed amounts)."""
    return {
        "interest_fees": money.cents(case.gross_amount * Decimal(str(chance.uniform(0.01, 0.05)))),
        "reminder_fees": money.cents(chance.choice((Decimal(0), Decimal(10), Decimal(25)))),
        "collection_fees": money.cents(chance.choice((Decimal(15), Decimal(40), Decimal(70)))),
    }


def _expect(case: CaseRecord, state: Lifecycle) -> None:
    if case.lifecycle is not state:
        raise bad_request(f"expected {state.value}, found {case.lifecycle.value}", "InvalidLifecycle")


def _creditor_user(case: CaseRecord) -> User:
    return User(
        id=case.creditor_id,
        number=case.creditor_id.int % 90000 + 10000,
        name=f"{case.creditor_name} Accounts",
        email="accounts@creditor.example",
    )
