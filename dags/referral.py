"""Refer the CRM's overdue invoices to Debitura and write every outcome back, then end.

Scheduled on the ``crm_overdue_invoices`` asset that ``debitura_crm_extract`` publishes. Which
batches a run refers, first match wins:

1. the ``batch_id`` param (trigger with conf ``{"batch_id": "..."}``);
2. the batches of the asset events that triggered the run;
3. the latest extract batch, for runs started by hand or by ``airflow dags test``, which does
   not do asset scheduling.

Steps, in three groups: **refer** (check every record: the invalid ones go to ``rejections`` and do
not fail the run; refer the valid ones in one bulk task), **first payment** (a short deferred wait,
``WAIT_TIMEOUT``, 60 s by default, for a first payment on one of the cases, and the timelines of the paid
cases; with ``DEBITURA_REFERRAL_WAIT_SECONDS=0`` it checks once and goes on) and **record** (upsert one
``referral_ledger`` row per record, and write the run's HTML report: amounts referred, collected
and outstanding by client and by lifecycle; the ``write_report`` log gives its path). Then the run
ends: ``debitura_portfolio`` follows each case until it closes (payments, lifecycle, flags). The
run fails only when records could not be referred (retryable errors) or a step failed; a later run
retries the records.

**Approval** (Airflow 3.1+, ``DEBITURA_APPROVAL_THRESHOLD``): before referring, a person approves or
rejects the batch in Airflow's UI (the ``approve_referral`` task's Required Action). ``0`` asks for
every batch; an amount asks only when one client's valid records add up to more than it; unset, no
approval. Rejected records end in the ledger and ``rejections`` as ``not approved``, with the
reviewer's comment. On Airflow 3.0 the step is left out and the log says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from agency_crm import CRM_CONN_ID, OVERDUE_INVOICES
from agency_crm.artifacts import VARIABLE as ARTIFACTS_VARIABLE
from agency_crm.checks import CHECKED_RECORDS_SQL, check_records, save_checked
from agency_crm.db import ensure_schema, transaction
from agency_crm.extract import RECORD_KEY, REFERRED, latest_batch_id, load_records
from agency_crm.ledger import WHOLE_RECORD, invalid_entries, reason_of, replace_rejections, upsert_ledger
from agency_crm.report import write_run_report
from airflow.sdk import Param, TaskGroup, Variable, dag, task

from debitura_provider.api.models import Case, Payment
from debitura_provider.api.money import to_minor
from debitura_provider.coercion import as_amount
from debitura_provider.compat import AirflowFailException, AirflowSkipException, supports
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.operators.managed_cases import FetchTimelineOperator, ReferInvoicesOperator
from debitura_provider.sensors.managed_cases import ManagedCaseSensor

log = logging.getLogger(__name__)

WAIT_TIMEOUT = dt.timedelta(seconds=float(os.environ.get("DEBITURA_REFERRAL_WAIT_SECONDS", "60")))
"""How long a run waits for a first payment (for the demo) before writing the ledger without one;
every later change reaches the ledger through ``debitura_portfolio``."""
APPROVAL_THRESHOLD = os.environ.get("DEBITURA_APPROVAL_THRESHOLD", "").strip()
"""Empty: no approval; ``0``: every batch; an amount: batches in which one client's records exceed it."""
if APPROVAL_THRESHOLD:
    as_amount(APPROVAL_THRESHOLD, "DEBITURA_APPROVAL_THRESHOLD")  # a bad value fails the parse, naming it
APPROVAL = bool(APPROVAL_THRESHOLD) and supports("hitl")  # on 3.0, supports() logs once why it is off
APPROVAL_TASK = "approve_referral"
NOT_APPROVED = "not approved"
POLL_INTERVAL = dt.timedelta(seconds=10)
"""One poll costs one list request per 100 cases (plus the payments of cases whose money moved)."""


@dag(
    dag_id="debitura_referral",
    schedule=[OVERDUE_INVOICES],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["debitura", "example"],
    params={"batch_id": Param(None, type=["null", "string"], description="Refer this extract batch.")},
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=10)},
    doc_md=__doc__,
)
def debitura_referral() -> None:
    # Groups keep the graph readable (collapsed: refer -> first payment -> record); task ids stay flat.
    refer_group = TaskGroup("refer", prefix_group_id=False, tooltip="Check the extract, refer the valid records")
    wait_group = TaskGroup("first_payment", prefix_group_id=False, tooltip="A short wait for a first payment")
    record_group = TaskGroup("record", prefix_group_id=False, tooltip="Ledger rows and the run's report")

    @task(task_group=refer_group)
    def resolve_batches(params: dict[str, Any], triggering_asset_events: Any) -> list[str]:
        """The extract batches this run refers (see the DAG doc for the order)."""
        if params.get("batch_id"):
            return [params["batch_id"]]
        events = triggering_asset_events[OVERDUE_INVOICES] if triggering_asset_events else []
        from_events = [event.extra["batch_id"] for event in events if (event.extra or {}).get("batch_id")]
        if from_events:
            return list(dict.fromkeys(from_events))
        with transaction(CRM_CONN_ID) as connection:
            ensure_schema(connection)
            latest = latest_batch_id(connection)
        if latest is None:
            raise AirflowSkipException("No extract batch yet: run debitura_crm_extract first.")
        return [latest]

    # --8<-- [start:referral_check]
    @task(task_group=refer_group)
    def check_extract(batch_ids: list[str], run_id: str) -> dict[str, Any]:
        """Step 1: records Debitura would refuse go to ``rejections`` and the ledger; the rest go on.

        Only batch ids and record keys leave the CRM: the records to refer are marked in
        ``checked_records`` for this run, and the bulk task reads them from the CRM itself.
        """
        with transaction(CRM_CONN_ID) as connection:
            loaded = load_records(connection, batch_ids)
            checked = check_records(loaded)
            replace_rejections(connection, "check", checked.batch_of, checked.invalid, checked.batch_of)
            upsert_ledger(connection, invalid_entries(_by_key(loaded), checked.batch_of, checked.invalid))
            save_checked(connection, run_id, checked)
        print(f"{len(loaded)} records: {len(checked.valid)} to refer, {len(checked.invalid)} invalid.")
        return {"batch_ids": batch_ids, "to_refer": checked.valid_keys, "invalid": sorted(checked.invalid)}

    checked = check_extract(resolve_batches())
    # --8<-- [end:referral_check]

    # --8<-- [start:referral_bulk]
    # Step 2: one task for the whole extract; one outcome per record, pushed before it fails on
    # a retryable error, and idempotent: its retry returns the cases already made.
    # The records come from the CRM at run time (a SQL query on its connection), never through XCom.
    refer = ReferInvoicesOperator(
        task_id="refer_invoices",
        records_sql=CHECKED_RECORDS_SQL,
        records_parameters={"run_id": "{{ run_id }}"},
        records_conn_id=CRM_CONN_ID,
        records_json_column="payload",
        record_key=RECORD_KEY,
        task_group=refer_group,
    )
    checked >> refer
    # --8<-- [end:referral_bulk]
    if APPROVAL:
        _approval_before(checked, refer, refer_group)

    @task(task_group=refer_group)
    def referred_case_ids(outcomes: list[dict[str, Any]]) -> list[str]:
        ids = [o["caseId"] for o in outcomes if o["status"] in REFERRED and o.get("caseId")]
        if not ids:
            raise AirflowSkipException("No case was referred: nothing to wait for.")
        return ids

    # --8<-- [start:referral_wait]
    # Step 3: deferred, so a waiting run holds no worker slot.
    wait = ManagedCaseSensor(
        task_id="wait_for_payment",
        case_ids=referred_case_ids(refer.output),
        condition="new_payment",
        require="any",
        deferrable=True,
        poke_interval=POLL_INTERVAL.total_seconds(),
        timeout=WAIT_TIMEOUT.total_seconds(),
        soft_fail=True,
        task_group=wait_group,
    )
    # --8<-- [end:referral_wait]

    @task(task_group=wait_group)
    def paid_case_ids(result: dict[str, Any]) -> list[str]:
        return list(result["satisfied"])

    # Step 4: the timeline of each paid case.
    paid = paid_case_ids(wait.output)
    timelines = FetchTimelineOperator.partial(task_id="fetch_timeline", task_group=wait_group).expand(case_id=paid)

    @task(trigger_rule="all_done", task_group=record_group)
    def record_outcomes(ti: Any) -> dict[str, int]:
        """Step 5: upsert one ledger row per referred record, with the case as it stands now."""
        batch_ids = ti.xcom_pull(task_ids="resolve_batches") or []
        with transaction(CRM_CONN_ID) as connection:
            checked = check_records(load_records(connection, batch_ids))
        # The outcomes are the return value, or an XCom of their own when the task failed on some records.
        reported = ti.xcom_pull(task_ids="refer_invoices") or ti.xcom_pull(task_ids="refer_invoices", key="outcomes")
        outcomes = {o["recordKey"]: o for o in reported or []}
        refusal = _refusal(ti.xcom_pull(task_ids=APPROVAL_TASK)) if APPROVAL else None
        if refusal is not None:
            outcomes = {r[RECORD_KEY]: {"status": NOT_APPROVED, "reason": refusal} for r in checked.valid}
        paid_ids = ti.xcom_pull(task_ids="paid_case_ids") or []
        found = ti.xcom_pull(task_ids="fetch_timeline", map_indexes=range(len(paid_ids))) if paid_ids else []
        last_events = {cid: _last_event(items) for cid, items in zip(paid_ids, found, strict=True) if items}
        cases, payments = _current_state(
            [o["caseId"] for o in outcomes.values() if o["status"] in REFERRED and o.get("caseId")]
        )
        entries = [
            _ledger_entry(r, checked.batch_of[r[RECORD_KEY]], outcomes.get(r[RECORD_KEY]), cases, payments, last_events)
            for r in checked.valid
        ]
        api_rejected = {
            key: outcomes[key].get("fieldErrors") or {WHOLE_RECORD: [outcomes[key].get("reason") or "rejected"]}
            for key in (e["record_key"] for e in entries if e["status"] in ("rejected", NOT_APPROVED))
        }
        with transaction(CRM_CONN_ID) as connection:
            upsert_ledger(connection, entries)
            replace_rejections(connection, "debitura", checked.batch_of, api_rejected, api_rejected)
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        print("Referred records:", ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none")
        return counts

    ledger = record_outcomes()
    [checked, refer, wait, timelines] >> ledger

    # --8<-- [start:referral_report]
    @task(trigger_rule="all_done", task_group=record_group)
    def write_report(ti: Any, run_id: str) -> str:
        """Step 6: the run as an HTML page, amounts by client and by lifecycle, in the artifact store.

        Returns the page's URL (this task's XCom; the log says it too): on Celery or Kubernetes the
        store is shared (``s3://``, ``gs://``), so any worker, or a person, can read what this one wrote.
        """
        batch_ids = ti.xcom_pull(task_ids="resolve_batches") or []
        base = Variable.get(ARTIFACTS_VARIABLE, default=None)
        with transaction(CRM_CONN_ID) as connection:
            path = write_run_report(connection, batch_ids, run_id, case_url=DebituraHook().portal_case_url, url=base)
        log.info("Referral report: %s", path)  # logged, not printed: stdout lines can land after "Done"
        return str(path)

    report = write_report()
    ledger >> report
    # --8<-- [end:referral_report]

    # The ledger and report steps run whatever happened before them; without this, their success
    # would hide a failure upstream (a run's state follows its last tasks).
    @task(trigger_rule="one_failed", retries=0)
    def fail_run_if_a_step_failed() -> None:
        raise AirflowFailException("A step of this run failed (see the failed task); the ledger was still written.")

    steps = [checked, refer, wait, paid, timelines, ledger, report]
    steps >> fail_run_if_a_step_failed()


def _approval_before(checked: Any, refer: Any, group: TaskGroup) -> None:
    """Put a person's approval between the check and the bulk referral, when the batch calls for one."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    @task.branch(task_group=group)
    def approval_needed(checked: dict[str, Any]) -> str | list[str]:
        """Ask for approval when one client's valid records exceed the threshold (``0``: always)."""
        with transaction(CRM_CONN_ID) as connection:
            valid = check_records(load_records(connection, checked["batch_ids"])).valid
        per_client: dict[str, Decimal] = {}
        for record in valid:
            client = str(record.get("creditorCompanyName"))
            per_client[client] = per_client.get(client, Decimal(0)) + Decimal(str(record["amountToRecover"]))
        threshold = as_amount(APPROVAL_THRESHOLD, "DEBITURA_APPROVAL_THRESHOLD")
        top = max(per_client.values(), default=Decimal(0))
        if valid and (threshold == 0 or top > threshold):
            log.info("Approval needed: the largest client total is %s (threshold %s).", top, threshold)
            return [APPROVAL_TASK, "refer_invoices"]  # the referral waits for the approval
        log.info("No approval needed: no client's records exceed %s (largest %s).", threshold, top)
        return "refer_invoices"

    approve = ApprovalOperator(
        task_id=APPROVAL_TASK,
        task_group=group,
        subject="Refer extract batch {{ ti.xcom_pull(task_ids='resolve_batches') | join(', ') }} to Debitura?",
        body="The batch's records are in the CRM (`checked_records` of run `{{ run_id }}`). "
        "Approve to refer them; reject to record them as not approved, with your comment.",
        # Optional ("null" in its type): Airflow's form marks a field without it required and keeps
        # Approve and Reject disabled until something is typed.
        params={"comment": Param(None, type=["null", "string"], description="Why (kept with rejected records).")},
        retries=0,
    )
    gate = approval_needed(checked)
    gate >> [approve, refer]
    approve >> refer
    refer.trigger_rule = "none_failed_min_one_success"  # after the approval, or after the gate alone


def _refusal(decision: Any) -> str | None:
    """The reviewer's comment (or a default) when the batch was rejected; None when approved or not asked."""
    if not isinstance(decision, dict) or decision.get("chosen_options") != ["Reject"]:
        return None
    comment = str((decision.get("params_input") or {}).get("comment") or "").strip()
    who = (decision.get("responded_by_user") or {}).get("name") or "the reviewer"
    return f"{NOT_APPROVED} by {who}" + (f": {comment}" if comment else "")


def _by_key(loaded: list[tuple[str, str, Any]]) -> dict[str, Any]:
    return {key: record for _, key, record in loaded}


def _current_state(case_ids: list[str]) -> tuple[dict[str, Case], dict[str, list[Payment]]]:
    """Every referred case now, and the payments of those that were paid something."""
    if not case_ids:
        return {}, {}
    client = DebituraHook().get_client()
    cases = {str(case.id): case for case in client.get_managed_cases(case_ids)}
    paid = [cid for cid, case in cases.items() if to_minor(case.paid_off, case.currency) > 0]
    payments = {cid: client.get_managed_case_payments(cid) for cid in paid}
    return cases, payments


def _last_event(items: Iterable[dict[str, Any]]) -> str:
    latest = max(items, key=lambda item: item.get("date") or "")
    return f"{(latest.get('date') or '')[:10]} {latest.get('title')}"[:400]  # the summary: no free text


def _ledger_entry(
    record: dict[str, Any],
    batch_id: str,
    outcome: dict[str, Any] | None,
    cases: dict[str, Case],
    payments: dict[str, list[Payment]],
    last_events: dict[str, str],
) -> dict[str, Any]:
    entry = {
        "record_key": record[RECORD_KEY],
        "batch_id": batch_id,
        "currency": record["currencyCode"],
        "amount_referred": record["amountToRecover"],
    }
    if outcome is None:
        return entry | {"status": "failed", "reason": "the bulk task reported no outcome for it (see its log)"}
    entry |= {"status": outcome["status"], "reason": outcome.get("reason")}
    if outcome.get("fieldErrors"):
        entry["reason"] = reason_of(outcome["fieldErrors"])
    case = cases.get(outcome.get("caseId") or "")
    if case is None:
        return entry | {"case_id": outcome.get("caseId"), "case_reference": outcome.get("reference")}
    paid = payments.get(str(case.id), [])
    return entry | {
        "case_id": str(case.id),
        "case_reference": case.reference,
        "lifecycle": case.lifecycle,
        "close_code": case.close_code,
        "currency": case.currency or record["currencyCode"],
        "remainder": case.remainder,
        "amount_collected": sum((p.gross_amount for p in paid), Decimal(0)),
        "last_payment_date": max((p.date.date().isoformat() for p in paid if p.date), default=None),
        "last_event": last_events.get(str(case.id)),
    }


debitura_referral()
