"""The agency as a collection partner: accept the cases Debitura assigns it, and book its bank feed on them.

The agency holds two Debitura accounts: its managing-partner key (``debitura_default``), with which
it refers its clients' invoices, and its collection-partner key (``debitura_collection``), with which
it works the cases Debitura assigns to it. This DAG uses the second, then checks with the first.

Hourly (or whenever Debitura's ``case.assigned`` webhook wakes it, see docs):

1. ``wait_for_assigned_cases``: cases waiting for acceptance (Pending Verification); with
   ``min_new_cases`` above 0 it waits up to five minutes for that many.
2. ``accept_case`` (one per case): start it with the agency's reference ``AG-<reference>``, a
   welcome message and its reminder fee.
3. ``load_bank_feed``: the bank's lines are in the CRM's ``bank_feed`` table (the bank import puts
   them there; with ``sample_feed`` this task writes a sample feed with realistic noise, once).
4. ``reconcile``: each new line is matched to a case by the reference in its text, or goes to
   ``bank_feed_exceptions`` with the reason (see ``agency_crm/bank_feed.py``).
5. ``record_payment`` (one per match): ``POST /cases/{id}/payments``, keyed by the bank transaction id.
6. ``book_payments``: the CRM row of each recorded line gets its Debitura payment id.
7. ``check_managing_side``: the same payments, read back as the managing partner.

Exactly once: a line is decided once (step 4 skips lines already planned or excepted), and its
payment is recorded under an ``Idempotency-Key`` derived from the bank transaction id, so a retry
of step 5, or a re-run after a crash between steps 5 and 6, replays the payment instead of adding one.
Between tasks only ids, references, amounts and dates travel: payer names and remittance texts stay
in the CRM.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from agency_crm import CRM_CONN_ID
from agency_crm.bank_feed import (
    CaseFacts,
    ensure_bank_feed_schema,
    insert_feed,
    known_transactions,
    mark_recorded,
    match_lines,
    partner_reference,
    pending_payments,
    references_in,
    sample_feed,
    save_decisions,
    unprocessed_lines,
)
from agency_crm.db import rows, transaction
from agency_crm.ledger import now_iso
from airflow.sdk import Param, dag, task

from debitura_provider.api import NotFoundError
from debitura_provider.api.models import Case
from debitura_provider.compat import AirflowFailException
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.operators.case_payments import RecordPaymentOperator
from debitura_provider.operators.case_work import StartCaseOperator
from debitura_provider.sensors.assigned_cases import AssignedCasesSensor

COLLECTION_CONN_ID = "debitura_collection"
"""The agency's collection-partner account (its own API key)."""
MANAGING_CONN_ID = DebituraHook.default_conn_name
"""The agency's managing-partner account."""
LOOKUP_BATCH = 100


def _facts(case: Case) -> CaseFacts:
    return CaseFacts(
        str(case.id), case.reference or "", case.lifecycle or "", case.currency or "", Decimal(str(case.remainder))
    )


@dag(
    dag_id="debitura_collection_partner",
    schedule="@hourly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["debitura", "example", "collection-partner"],
    params={
        "welcome_message": Param(
            "Thank you for the assignment. We have started collection and will keep you posted here.",
            type="string",
            minLength=1,
            maxLength=5000,
        ),
        "reminder_fee": Param("25.00", type="string", description="Reminder fee added when accepting a case."),
        "min_new_cases": Param(
            0,
            type="integer",
            minimum=0,
            description="Wait (up to 5 minutes) until this many cases wait for acceptance.",
        ),
        "sample_feed": Param(False, type="boolean", description="Write a sample bank feed if the table is empty."),
    },
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=10)},
    doc_md=__doc__,
)
def debitura_collection_partner() -> None:
    assigned = AssignedCasesSensor(
        task_id="wait_for_assigned_cases",
        debitura_conn_id=COLLECTION_CONN_ID,
        min_cases="{{ params.min_new_cases }}",
        mode="reschedule",
        poke_interval=30,
        timeout=300,
        soft_fail=True,  # nothing new: the bank feed is still reconciled
    )

    @task
    def plan_acceptance(found: dict[str, Any]) -> list[dict[str, Any]]:
        """One start per waiting case, signed by the account's first portal user."""
        users = DebituraHook(COLLECTION_CONN_ID).get_client().list_users().users
        if not users:
            raise AirflowFailException("The collection-partner account has no portal user to sign the welcome message")
        return [
            {
                "case_id": case["id"],
                "collection_partner_reference": partner_reference(case["reference"]),
                "user_email": users[0].email,
            }
            for case in found["cases"]
        ]

    # --8<-- [start:accept]
    accepted = StartCaseOperator.partial(
        task_id="accept_case",
        debitura_conn_id=COLLECTION_CONN_ID,
        welcome_message="{{ params.welcome_message }}",
        reminder_fees="{{ params.reminder_fee }}",
    ).expand_kwargs(plan_acceptance(assigned.output))
    # --8<-- [end:accept]

    @task(trigger_rule="all_done")  # a case that could not be accepted does not hold up the bank feed
    def load_bank_feed(params: dict[str, Any]) -> dict[str, int]:
        """How many lines the feed holds; with ``sample_feed``, a sample written into an empty feed first."""
        with transaction(CRM_CONN_ID) as connection:
            ensure_bank_feed_schema(connection)
            count = rows(connection, "SELECT COUNT(*) AS n FROM bank_feed")[0]["n"]
        added = 0
        if params["sample_feed"] and count == 0:
            client = DebituraHook(COLLECTION_CONN_ID).get_client()
            cases = [_facts(c) for c in client.iter_cases(statuses=["Active"], sort="DateCreated:asc")]
            if len(cases) >= 5:
                lines = sample_feed(cases, dt.date.today().isoformat(), now_iso())
                with transaction(CRM_CONN_ID) as connection:
                    added = insert_feed(connection, lines)
        print(f"Bank feed: {count + added} line(s), {added} sample line(s) added.")
        return {"lines": count + added, "added": added}

    @task
    def reconcile() -> list[dict[str, Any]]:
        """Decide every new line; the payments still to record (this run's and any left pending)."""
        with transaction(CRM_CONN_ID) as connection:
            lines = unprocessed_lines(connection)
            known = known_transactions(connection)
            planned = [
                (r["case_id"], r["amount"], str(r["payment_date"]))
                for r in rows(connection, "SELECT case_id, amount, payment_date FROM bank_feed_payments")
            ]
        wanted = sorted({ref for line in lines for ref in references_in(line.get("remittance_info"))})
        client = DebituraHook(COLLECTION_CONN_ID).get_client()
        cases: dict[str, CaseFacts] = {}
        for start in range(0, len(wanted), LOOKUP_BATCH):
            found = client.get_cases_by_partner_references(wanted[start : start + LOOKUP_BATCH])
            cases.update({ref: _facts(case) for ref, case in found.items()})
        plans, problems = match_lines(lines, cases, known, planned)
        with transaction(CRM_CONN_ID) as connection:
            save_decisions(connection, plans, problems, now_iso())
            pending = pending_payments(connection)
        by_reason: dict[str, int] = {}
        for p in problems:
            by_reason[p.reason_code] = by_reason.get(p.reason_code, 0) + 1
        print(
            f"{len(lines)} new line(s): {len(plans)} matched, {len(problems)} exception(s) {by_reason}; "
            f"{len(pending)} payment(s) to record."
        )
        return [
            {
                "case_id": p["case_id"],
                "amount": p["amount"],
                "payment_date": str(p["payment_date"]),
                "close_case": bool(p["close_case"]),
                "source_id": p["bank_transaction_id"],
            }
            for p in pending
        ]

    # --8<-- [start:record_payments]
    planned = reconcile()
    recorded = RecordPaymentOperator.partial(
        task_id="record_payment",
        debitura_conn_id=COLLECTION_CONN_ID,
        payment_recipient="CollectionPartner",
    ).expand_kwargs(planned)
    # --8<-- [end:record_payments]

    @task(trigger_rule="none_failed")
    def book_payments(plans: list[dict[str, Any]], results: Any) -> list[dict[str, str]]:
        """Write each recorded payment's id next to its bank line."""
        answers = list(results) if results is not None else []
        booked = []
        with transaction(CRM_CONN_ID) as connection:
            for plan, answer in zip(plans, answers, strict=True):
                mark_recorded(connection, plan["source_id"], answer["paymentId"], answer["remainingAmount"], now_iso())
                booked.append({"caseId": plan["case_id"], "paymentId": answer["paymentId"]})
        print(f"{len(booked)} payment(s) booked.")
        return booked

    @task
    def check_managing_side(booked: list[dict[str, str]]) -> dict[str, int]:
        """Each payment as the managing partner sees it on the case it referred."""
        client = DebituraHook(MANAGING_CONN_ID).get_client()
        missing = shown = 0
        cases = sorted({b["caseId"] for b in booked})
        for case_id in cases:
            try:
                seen = {str(p.id) for p in client.get_managed_case_payments(case_id)}
            except NotFoundError:
                continue  # referred by another managing partner, not by this agency
            mine = [b for b in booked if b["caseId"] == case_id]
            shown += sum(1 for b in mine if b["paymentId"] in seen)
            missing += sum(1 for b in mine if b["paymentId"] not in seen)
        if missing:
            raise AirflowFailException(f"{missing} recorded payment(s) do not show on the managing side")
        print(f"{shown} of {len(booked)} payment(s) show on the managing side (the rest: cases others referred).")
        return {"cases": len(cases), "payments": len(booked), "shownToManagingPartner": shown}

    feed = load_bank_feed()
    accepted >> feed >> planned
    check_managing_side(book_payments(planned, recorded.output))


debitura_collection_partner()
