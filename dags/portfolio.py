"""Follow every referred case until it closes: ledger, CRM payment notifications and flags.

Scheduled on both Debitura assets, ``debitura_payments`` and ``debitura_case_lifecycle``, which two
sources update with the same envelope:

- the webhook receiver in Airflow's API server, when Debitura can reach it (docs/webhooks.md);
- the portfolio scan, ``DebituraPortfolioTrigger`` (``debitura_provider.triggers.portfolio``), one
  watcher per asset running in the triggerer: about two list requests a minute for any number of
  cases, no inbound traffic. ``DEBITURA_PORTFOLIO_SCAN=0`` turns the watchers off (webhooks only);
  ``DEBITURA_PORTFOLIO_POLL_SECONDS`` sets their interval (60 by default).

A run reads the cases named in its events (one ``GET /managed-cases?Ids=...`` per 100 cases, plus
the payments of the cases a payment event names), then, in one CRM transaction: one
``payment_notifications`` row per payment (keyed by payment, so both sources and any redelivery
record it once), the ledger row of each referred case copied from Debitura's current figures (so
the order of events does not matter), and ``case_flags`` for the cases that need the agency. A run
started by hand (or by ``airflow dags test``) handles the latest ``recent`` events of each asset
again and reconciles every case of the ledger (payments read only where the collected amount moved
since the row was written).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from agency_crm import CRM_CONN_ID
from agency_crm.db import ensure_schema, transaction
from agency_crm.portfolio import (
    ensure_tables,
    ledger_cases,
    money_moved,
    record_notifications,
    referred,
    refresh_ledger,
    update_flags,
)
from airflow.sdk import Param, dag, task

from debitura_provider.api.watch.scan import normalize_event
from debitura_provider.assets import DEBITURA_CASE_LIFECYCLE, DEBITURA_PAYMENTS
from debitura_provider.compat import latest_asset_events
from debitura_provider.hooks.debitura import DebituraHook
from debitura_provider.triggers.portfolio import portfolio_watchers

SCAN = os.environ.get("DEBITURA_PORTFOLIO_SCAN", "1").strip().lower() not in ("0", "false", "off", "no")
POLL_SECONDS = float(os.environ.get("DEBITURA_PORTFOLIO_POLL_SECONDS", "60"))

# --8<-- [start:portfolio_assets]
PAYMENTS, LIFECYCLE = (
    portfolio_watchers(poll_interval=POLL_SECONDS) if SCAN else (DEBITURA_PAYMENTS, DEBITURA_CASE_LIFECYCLE)
)
# --8<-- [end:portfolio_assets]


# --8<-- [start:portfolio_dag]
@dag(
    dag_id="debitura_portfolio",
    schedule=PAYMENTS | LIFECYCLE,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["debitura", "example"],
    default_args={"retries": 3, "retry_delay": dt.timedelta(seconds=10)},
    params={
        "recent": Param(100, type="integer", minimum=1, description="Runs by hand: handle this many latest events."),
    },
    doc_md=__doc__,
)
def debitura_portfolio() -> None:
    # The watched assets themselves as inlets: Airflow keeps one definition per asset, the last it sees.
    @task(inlets=[PAYMENTS, LIFECYCLE])
    def follow_cases(params: dict[str, Any], triggering_asset_events: Any, inlet_events: Any) -> dict[str, int]:
        """Bring the ledger, the payment notifications and the flags up to date for the changed cases."""
        assets = (PAYMENTS, LIFECYCLE)
        triggered = [e for a in assets for e in (triggering_asset_events[a] if triggering_asset_events else [])]
        by_hand = not triggered
        if by_hand:  # the latest events again (all idempotent), and every ledger case below
            triggered = [e for a in assets for e in latest_asset_events(inlet_events, a, int(params["recent"]))]
        events = [normalize_event(event.extra) for event in triggered if event.extra]
        events.sort(key=lambda e: str(e.get("createdAt") or ""))
        with transaction(CRM_CONN_ID) as connection:
            ensure_schema(connection)
            ensure_tables(connection)
            named = [e["data"]["caseId"] for e in events if e["data"].get("caseId")]
            rows = ledger_cases(connection)
            ids = list(rows) if by_hand else list(referred(connection, named))
        client = DebituraHook().get_client()
        cases = client.get_managed_cases(ids) if ids else []
        paid = {e["data"]["caseId"] for e in events if e["type"].startswith("payment.")}
        if by_hand:
            paid = {str(c.id) for c in cases if money_moved(c, rows.get(str(c.id)))}
        payments = {str(c.id): client.get_managed_case_payments(c.id) for c in cases if str(c.id) in paid}
        with transaction(CRM_CONN_ID) as connection:
            new = record_notifications(connection, events)
            updated = sum(refresh_ledger(connection, case, payments.get(str(case.id))) for case in cases)
            flags = update_flags(connection, cases, referred(connection, ids))
        closed = sum(1 for c in cases if c.lifecycle == "Closed")
        print(
            f"{len(events)} event(s), {len(cases)} referred case(s) read: {new} new payment notification(s), "
            f"{updated} ledger row(s) updated ({closed} closed), {flags['raised']} flag(s) raised, "
            f"{flags['cleared']} cleared."
        )
        return {"events": len(events), "cases": len(cases), "new_notifications": new, "ledger_rows": updated, **flags}

    follow_cases()


# --8<-- [end:portfolio_dag]


debitura_portfolio()
