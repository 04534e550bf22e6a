"""``make demo``: an agency refers its overdue invoices to Debitura, end to end, in about a minute.

Starts the sandbox (simulated collection partners pay some cases within seconds), prepares a
fresh Airflow home in ``.airflow/demo`` with the two connections, seeds the sample CRM, runs
``debitura_crm_extract`` then ``debitura_referral`` with ``airflow dags test``. After the referral
run has ended, the partners keep collecting: the portfolio scan, run here for two cycles, shows what
changed, and ``debitura_portfolio`` (``airflow dags test``: a run by hand reconciles the whole
ledger) brings those payments and closes into the ledger. Then it prints what happened to every
invoice. ``airflow dags test`` does no asset scheduling, so the referral run picks the latest
extract batch itself. Everything started here stops on exit, Ctrl-C included.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from local_airflow import BIN, REPO, airflow, connection_env, connections, run_main, seed_crm, tail, use_home

HOME = REPO / ".airflow" / "demo"
SANDBOX_SPEED = 86400.0
"""One sandbox day per second: the simulated partners collect the first payments within seconds."""
DAGS = ("debitura_crm_extract", "debitura_referral")
APPROVAL_THRESHOLD = "1000000000"
"""The referral asks a person to approve only batches in which one client's records exceed this
(DEBITURA_APPROVAL_THRESHOLD): the sample never does, so the demo runs unattended."""
FOLLOW_SECONDS = 6.0
"""How long the demo lets the partners work after the referral ended (six sandbox days)."""


def main() -> int:
    env = use_home(HOME, fresh=True) | {"DEBITURA_APPROVAL_THRESHOLD": APPROVAL_THRESHOLD}
    print(
        f"Approval before referral: only for a client above {int(APPROVAL_THRESHOLD):,} in one batch, "
        "which the sample never reaches, so the referral runs unattended."
    )
    from debitura_provider.sandbox import SandboxConfig, SandboxServer

    started = time.monotonic()
    logs = HOME / "logs"
    logs.mkdir(exist_ok=True)
    config = SandboxConfig(api_key=secrets.token_urlsafe(24), port=0, seed=7, speed=SANDBOX_SPEED)
    with SandboxServer(config) as sandbox:
        print(f"Sandbox running at {sandbox.base_url} (speed x{SANDBOX_SPEED:g})")
        conns = connections(sandbox.base_url, sandbox.api_key, sandbox.portal_url, HOME / "crm.sqlite3")
        env |= connection_env(conns)
        os.environ.update(env)
        step("Preparing the Airflow metadata database", airflow, ["db", "migrate"], env, logs / "db-migrate.log")
        counts = step("Seeding the sample CRM", seed_crm)
        print("  " + ", ".join(f"{n} {table}" for table, n in counts.items()))
        for dag_id in DAGS:
            step(f"airflow dags test {dag_id}", dags_test, dag_id, env, logs / f"{dag_id}.log")
        before = ledger_figures()
        step("After the referral run: the partners keep collecting; the portfolio scan watches", follow, sandbox)
        step(
            "airflow dags test debitura_portfolio",
            dags_test,
            "debitura_portfolio",
            env,
            logs / "debitura_portfolio.log",
        )
        print_later_changes(before, ledger_figures())
        collected = print_summary()
    print(f"\nSandbox stopped. Done in {time.monotonic() - started:.0f} s. Logs: {logs.relative_to(REPO)}/")
    if not collected:
        print("No payment arrived while the referral waited: see the wait_for_payment task in the log.")
        return 1
    return 0


def step(title: str, fn: Any, *args: Any) -> Any:
    print(f"\n▶ {title}", flush=True)
    began = time.monotonic()
    result = fn(*args)
    print(f"  done in {time.monotonic() - began:.1f} s", flush=True)
    return result


def dags_test(dag_id: str, env: dict[str, str], log: Path) -> None:
    """``airflow dags test``, its output into ``log`` and each task's start and end on screen."""
    with (
        log.open("w") as out,
        subprocess.Popen(
            [str(BIN / "airflow"), "dags", "test", dag_id],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if "[DAG TEST] starting task_id=" in line:
                    print("  • " + line.split("task_id=", 1)[1].split()[0], flush=True)
                elif "running trigger in line" in line:
                    print("    (deferred: waiting for the trigger)", flush=True)
                elif "Referral report: " in line:
                    print("    report: " + line.split("Referral report: ", 1)[1].split()[0], flush=True)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    if proc.returncode != 0 or "state=success" not in log.read_text(errors="replace"):
        raise RuntimeError(f"airflow dags test {dag_id} did not succeed (exit {proc.returncode}):\n{tail(log)}")


def follow(sandbox: Any) -> None:
    """Two portfolio-scan cycles around :data:`FOLLOW_SECONDS` of the partners' work: what they did."""
    from debitura_provider.api import UNLIMITED, DebituraClient
    from debitura_provider.api.watch import run_sync
    from debitura_provider.api.watch.scan import PortfolioScan, ScanState, events_of

    state = ScanState()
    with DebituraClient(sandbox.api_key, sandbox.base_url, rate_limits=UNLIMITED) as client:
        run_sync(client, PortfolioScan(state).cycle())  # the baseline: the referral's end
        time.sleep(FOLLOW_SECONDS)
        result = run_sync(client, PortfolioScan(state).cycle())
    kinds = Counter(event["type"] for event in events_of(result))
    seen = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "no change"
    print(
        f"  the scan saw {seen} on {len(result.cases)} case(s), for {result.list_requests} list and "
        f"{result.payment_requests} payments request(s)"
    )


def ledger_figures() -> dict[str, tuple[Decimal, str | None, str | None]]:
    """Each ledger case's collected amount, lifecycle and close code, as the ledger says."""
    from agency_crm.db import rows, transaction
    from agency_crm.ledger import money

    with transaction() as connection:
        found = rows(connection, "SELECT * FROM referral_ledger WHERE case_id IS NOT NULL")
    return {
        r["record_key"]: (money(r["amount_collected"]) or Decimal(0), r["lifecycle"], r["close_code"]) for r in found
    }


def print_later_changes(before: dict[str, Any], after: dict[str, Any]) -> None:
    changed = {key: (before.get(key), now) for key, now in after.items() if before.get(key) != now}
    more = sum((now[0] - (was[0] if was else Decimal(0)) for was, now in changed.values()), Decimal(0))
    print(
        f"\nAfter the referral run ended, {len(changed)} ledger row(s) changed "
        f"({more:,.2f} more collected, all currencies):"
    )
    for key, (was, now) in sorted(changed.items()):
        old = f"{was[0]:,.2f} {was[1]}" if was else "-"
        print(f"  {key}  {old}  ->  {now[0]:,.2f} {', '.join(p for p in now[1:] if p)}")


def print_summary() -> bool:
    """What became of every record of the latest batch; True when at least one payment was collected."""
    from agency_crm.db import transaction
    from agency_crm.extract import latest_batch_id
    from agency_crm.ledger import WHOLE_RECORD, batch_record_keys, ledger_rows, money, rejection_rows

    with transaction() as connection:
        batch_id = latest_batch_id(connection)
        keys = batch_record_keys(connection, [batch_id] if batch_id else [])
        ledger = ledger_rows(connection, keys)
        rejections = rejection_rows(connection, keys)
    statuses = Counter(row["status"] for row in ledger)
    with_case = [row for row in ledger if row["case_id"]]
    print("\n══════════ Summary ══════════")
    print(f"Records read from the CRM:  {len(keys)}  (batch {batch_id})")
    created, existing = statuses["created"], statuses["existing"]
    print(f"Referred to Debitura:       {len(with_case)}  ({created} created, {existing} existing)")
    not_referred = [row for row in ledger if not row["case_id"]]
    print(f"Not referred:               {len(not_referred)}")
    reasons = defaultdict(list)
    for rejection in rejections:
        field = "" if rejection["field"] == WHOLE_RECORD else f"{rejection['field']}: "
        reasons[rejection["record_key"]].append(field + rejection["reason"])
    for row in not_referred:
        why = "; ".join(reasons.get(row["record_key"], [])) or row["reason"] or ""
        print(f"  {row['status']:<9}{row['record_key']}  {why}")
    print("Cases by lifecycle:         " + _counts(Counter(row["lifecycle"] or "?" for row in with_case)))
    paid = [row for row in with_case if (money(row["amount_collected"]) or 0) > 0]
    in_full = [row for row in paid if (money(row["remainder"]) or 0) <= 0]
    partly = [row for row in paid if row not in in_full]
    nothing = [row for row in with_case if row not in paid]
    by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for row in paid:
        by_currency[row["currency"]] += money(row["amount_collected"])
    amounts = ", ".join(f"{currency} {amount:,.2f}" for currency, amount in sorted(by_currency.items()))
    print(f"Amount collected:           {amounts or 'nothing yet'}")
    print(
        f"Cases:                      {len(in_full)} of {len(with_case)} paid in full, {len(partly)} partially "
        f"paid, {len(nothing)} received nothing"
    )
    for title, group in (("Paid in full", in_full), ("Partially paid", partly), ("Received nothing", nothing)):
        print(f"  {title}:")
        for row in group:
            state = ", ".join(part for part in (row["lifecycle"], row["close_code"]) if part)
            print(
                f"    {row['record_key']}  {row['case_reference']}  {row['currency']} "
                f"{money(row['amount_collected']) or 0:,.2f} of {money(row['amount_referred']):,.2f}  ({state})"
            )
    return bool(paid)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counter.most_common())


if __name__ == "__main__":
    run_main(main, "Interrupted: the sandbox and Airflow are stopped.")
