"""``make soak MINUTES=N``: the referral DAG in a loop against a sandbox that fails one request in five.

Not part of ``make test``. Starts ``debitura-sandbox --faults ...`` (its log in ``.airflow/soak/sandbox.log``),
a fresh Airflow home in ``.airflow/soak``, and in this one process runs ``debitura_referral`` with
``dag.test()`` again and again: each run refers a new batch of synthetic CRM records, plus the records
an earlier run could not refer (as the CRM extract would pick them up again). After each run it checks
Debitura's side and the CRM ledger and prints a line; at the end, a summary:

* records per second (whole runs, and the bulk task alone);
* faults injected (from the sandbox's log), client retries, Airflow task retries;
* duplicates: creditor references held by two or more cases (must be 0);
* lost records: a record with no ledger row, or a ledger case Debitura does not have (must be 0);
* memory (RSS) of the sandbox and of this Airflow process, after the first run and at the end.

Exits 1 when a duplicate or a lost record was seen.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_airflow import DAGS, REPO, connection_env, connections, output_into, run_main, use_home

HOME = REPO / ".airflow" / "soak"
FAULTS = "error=0.05,commit_then_error=0.04,commit_then_timeout=0.03,reset=0.03,slow=0.02,rate_limit=0.03"
FAULT_DELAY = 3.0
CLIENT = {"timeout": 2.0, "max_attempts": 3}
"""The held and slow requests outlast the client's timeout; few attempts, so Airflow's retries get work too."""
BATCH = 250
SANDBOX_SPEED = 8640.0
"""A tenth of a sandbox day per second: payments begin about half a minute after a case is made, so
each run's sensor sees a few at a time (at full demo speed most of a batch is paid at once, and the
run spends its time reading hundreds of timelines)."""
NO_PARTNER = ("JP", "MX")
JURISDICTIONS = (
    ("DE", None),
    ("DK", None),
    ("SE", None),
    ("GB", None),
    ("FR", None),
    ("NL", None),
    ("US", "CA"),
    ("US", "NY"),
    ("AU", None),
    ("CA", None),
)


def synthetic_record(n: int, prefix: str = "SOAK") -> dict[str, Any]:
    """A valid CRM record (``record_id`` = ``creditorReference``); one in a hundred has a debtor where
    no partner collects, so Debitura rejects it."""
    country, state = (NO_PARTNER[n % 2], None) if n % 100 == 99 else JURISDICTIONS[n % len(JURISDICTIONS)]
    issued = dt.date(2025, 1, 1) + dt.timedelta(days=n % 300)
    debtor: dict[str, Any] = (
        {"type": "Company", "name": f"Debtor {n} Ltd", "contactPerson": f"Contact {n}", "countryAlpha2": country}
        if n % 2
        else {"type": "Person", "name": f"Person {n}", "countryAlpha2": country}
    )
    if state:
        debtor["stateAlpha2"] = state
    key = f"{prefix}-{n:06d}"
    return {
        "record_id": key,
        "creditorCompanyName": f"Client {n % 17} A/S",
        "creditorCountryAlpha2": "DK",
        "currencyCode": ("EUR", "USD", "GBP", "DKK")[n % 4],
        "amountToRecover": round(100 + n * 7.31, 2),
        "date": issued.isoformat(),
        "dueDate": (issued + dt.timedelta(days=30)).isoformat(),
        "creditorReference": key,
        "debtor": debtor,
    }


class Counting(logging.Handler):
    """Counts the client's retry log lines (a retry after an error, or a wait after a 429)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(("Retrying", "Rate limited")):
            self.retries += 1


@dataclass
class Totals:
    records: int = 0
    run_seconds: float = 0.0
    bulk_seconds: float = 0.0
    task_retries: int = 0
    duplicates: int = 0
    lost: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


def start_sandbox(log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    key = secrets.token_urlsafe(24)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "debitura_provider.sandbox",
                "--port",
                "0",
                "--api-key",
                key,
                "--seed",
                "7",
                "--speed",
                str(SANDBOX_SPEED),
                "--faults",
                FAULTS,
                "--fault-delay",
                str(FAULT_DELAY),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while not (found := re.search(r"Debitura sandbox on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the sandbox did not start; see {log}")
        time.sleep(0.1)
    return process, found.group(1), key


def faults_seen(log: Path) -> Counter[str]:
    return Counter(re.findall(r"Injecting fault (\w+) into", log.read_text(errors="replace")))


def answered(log: Path) -> int:
    """Requests the sandbox's access log shows (a held request whose client left is not among them)."""
    return log.read_text(errors="replace").count(' HTTP/1.1" ')


def bulk_seconds(refer: Any) -> float:
    """From the first try's start to the last try's end: the bulk task's time, Airflow's retry delays included."""
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        first = session.scalar(
            select(func.min(TaskInstanceHistory.start_date)).where(
                TaskInstanceHistory.dag_id == refer.dag_id,
                TaskInstanceHistory.run_id == refer.run_id,
                TaskInstanceHistory.task_id == refer.task_id,
            )
        )
    started = min(filter(None, (first, refer.start_date)))
    return float((refer.end_date - started).total_seconds())


def mb(rss: int) -> str:
    return f"{rss / 2**20:.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("MINUTES") or 5))
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    use_home(HOME, fresh=True)
    logs = HOME / "logs"
    logs.mkdir()
    sandbox_log = HOME / "sandbox.log"
    sandbox, base_url, key = start_sandbox(sandbox_log)
    try:
        return soak(args.minutes, args.batch, base_url, key, sandbox.pid, sandbox_log, logs)
    finally:
        sandbox.terminate()
        sandbox.wait(60)


def soak(
    minutes: float, batch_size: int, base_url: str, key: str, sandbox_pid: int, sandbox_log: Path, logs: Path
) -> int:
    import psutil

    conns = connections(base_url, key, f"{base_url}/portal", HOME / "crm.sqlite3")
    conns["debitura_default"]["extra"].update(CLIENT)
    os.environ.update(connection_env(conns))
    print(
        f"Soak for {minutes:g} min: sandbox {base_url} with --faults {FAULTS}; {batch_size} new records a run; "
        f"Airflow home {HOME.relative_to(REPO)}",
        flush=True,
    )
    sys.path.insert(0, str(DAGS))  # the DAGs' agency_crm helpers, as Airflow's parsing does
    with output_into(logs / "setup.log"):
        from agency_crm.db import ensure_schema, rows, transaction
        from agency_crm.extract import save_batch
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db

        from debitura_provider.api import DebituraClient

        db.resetdb()
        with transaction() as connection:
            ensure_schema(connection)
        dag = DagBag(dag_folder=str(DAGS)).dags["debitura_referral"]
    counting = Counting()
    client_log = logging.getLogger("debitura_provider.api")
    me, sandbox = psutil.Process(), psutil.Process(sandbox_pid)
    totals = Totals()
    pending: list[dict[str, Any]] = []
    made = 0
    rss: list[tuple[int, int]] = []
    deadline = time.monotonic() + minutes * 60
    print(
        f"{'run':>4} {'records':>8} {'s':>6} {'rec/s':>6} {'faults':>7} {'retries':>8} {'task retries':>13} "
        f"{'dups':>5} {'lost':>5} {'failed':>7} {'sandbox RSS':>12} {'airflow RSS':>12}",
        flush=True,
    )
    run = 0
    while time.monotonic() < deadline:
        run += 1
        records = pending + [synthetic_record(n) for n in range(made, made + batch_size)]
        made += batch_size
        batch_id = f"soak-{run:04d}"
        with output_into(logs / f"run-{run:04d}.log"):
            with transaction() as connection:
                save_batch(connection, batch_id, records)
            if counting not in client_log.handlers:  # Airflow may reconfigure logging between runs
                client_log.addHandler(counting)
            client_log.setLevel(logging.INFO)
            retries_before, faults_before = counting.retries, sum(faults_seen(sandbox_log).values())
            began = time.monotonic()
            dag_run = dag.test(run_conf={"batch_id": batch_id})
            seconds = time.monotonic() - began
            keys = [r["record_id"] for r in records]
            with transaction() as connection:
                ledger = {r["record_key"]: r for r in rows(connection, "SELECT * FROM referral_ledger")}
            with DebituraClient(key, base_url, timeout=CLIENT["timeout"]) as client:
                cases = list(client.iter_managed_cases())
        tis = dag_run.get_task_instances()
        refer = next(ti for ti in tis if ti.task_id == "refer_invoices")
        held = Counter(c.creditor_reference for c in cases)
        duplicates = sum(1 for n in held.values() if n > 1)
        case_ids = {str(c.id) for c in cases}
        mine = [ledger.get(k) for k in keys]
        lost = sum(1 for row in mine if row is None) + sum(
            1 for row in ledger.values() if row["status"] in ("created", "existing") and row["case_id"] not in case_ids
        )
        pending = [r for r, row in zip(records, mine, strict=True) if row is not None and row["status"] == "failed"]
        statuses = Counter(row["status"] for row in mine if row is not None)
        totals.records += batch_size
        totals.run_seconds += seconds
        totals.bulk_seconds += bulk_seconds(refer)
        totals.task_retries += sum(max(ti.try_number - 1, 0) for ti in tis)
        totals.duplicates = max(totals.duplicates, duplicates)
        totals.lost += lost
        totals.statuses.update(statuses)
        rss.append((sandbox.memory_info().rss, me.memory_info().rss))
        print(
            f"{run:>4} {len(records):>8} {seconds:>6.1f} {len(records) / seconds:>6.1f} "
            f"{sum(faults_seen(sandbox_log).values()) - faults_before:>7} {counting.retries - retries_before:>8} "
            f"{sum(max(ti.try_number - 1, 0) for ti in tis):>13} {duplicates:>5} {lost:>5} {len(pending):>7} "
            f"{mb(rss[-1][0]):>12} {mb(rss[-1][1]):>12}",
            flush=True,
        )
    return summary(totals, faults_seen(sandbox_log), answered(sandbox_log), counting.retries, rss, len(pending))


def summary(
    totals: Totals, faults: Counter[str], requests: int, retries: int, rss: list[tuple[int, int]], pending: int
) -> int:
    (sandbox_first, airflow_first), (sandbox_last, airflow_last) = rss[0], rss[-1]
    print("\n══════════ Soak summary ══════════")
    print(
        f"Runs: {len(rss)}   records: {totals.records}   "
        f"records/s: {totals.records / totals.run_seconds:.1f} (whole runs), "
        f"{totals.records / totals.bulk_seconds:.1f} (bulk task, first try to last, retry delays included)"
    )
    print(
        "Outcomes (per run, carried-over records counted again): "
        + ", ".join(f"{n} {status}" for status, n in totals.statuses.most_common())
    )
    injected = sum(faults.values())
    print(
        f"Faults injected: {injected} of about {requests + faults['commit_then_timeout']} requests "
        f"({injected / (requests + faults['commit_then_timeout']):.0%}): "
        + ", ".join(f"{k} {n}" for k, n in faults.most_common())
    )
    print(f"Client retries: {retries}   Airflow task retries: {totals.task_retries}")
    print(
        f"Duplicates: {totals.duplicates}   Lost records: {totals.lost}   "
        f"Still failed (retryable, next run would send them): {pending}"
    )
    print(
        f"Sandbox RSS: {mb(sandbox_first)} after run 1 -> {mb(sandbox_last)} at the end "
        f"({(sandbox_last - sandbox_first) / 2**20:+.0f} MB)"
    )
    print(
        f"Airflow RSS: {mb(airflow_first)} after run 1 -> {mb(airflow_last)} at the end "
        f"({(airflow_last - airflow_first) / 2**20:+.0f} MB)"
    )
    return 0 if totals.duplicates == 0 and totals.lost == 0 else 1


if __name__ == "__main__":
    run_main(main, "Soak interrupted; the sandbox was stopped.")
