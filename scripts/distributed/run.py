"""``make test-distributed``: the provider on CeleryExecutor, Postgres, Redis, several triggerers and API workers.

    python -m scripts.distributed.run [--records 5000] [--sensors 500] [--webhooks 1000]

On the :class:`~scripts.distributed.stack.Stack` (3 Celery workers of concurrency 1, 2 triggerers,
the API server with 2 workers, scheduler, DAG processor, Postgres, Redis, the sandbox at Debitura's
real limits), with crashes injected while it works:

1. ``debitura_distributed_referral`` refers ``--records`` test records in mapped chunks, which land
   on different workers; one worker is SIGKILLed (with its task) in the middle of its chunk.
2. ``debitura_distributed_sensors`` defers one sensor per case for ``--sensors`` cases (runs of
   ``SENSORS_PER_RUN`` tasks; from Airflow 3.3 each starts and ends in a triggerer, no worker slot);
   once they are deferred on both triggerers, one triggerer is SIGKILLed, then each case gets a
   payment.
3. ``--webhooks`` signed deliveries (20% of them delivered twice) go to the receiver in the API
   server, many at once, so both API workers take them.

Then it prints the figures and exits 1 unless: every record has exactly one case (0 failed, 0
duplicated), at most 2% of requests were answered 429, every sensor started completed, and every
delivered event was recorded exactly once. Everything started is stopped, whatever happens.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import random
import sqlite3
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from bench.referral import make_records
from debitura_provider.api import DebituraClient
from debitura_provider.api.webhooks import SIGNATURE_HEADER, sign
from debitura_provider.compat import supports
from scripts.distributed.dags.distributed import SENSORS_PER_RUN
from scripts.distributed.stack import Stack, say

DAGS = Path(__file__).resolve().parent / "dags"
REFERRAL, SENSORS = "debitura_distributed_referral", "debitura_distributed_sensors"
CEILING = 2000 / 60.0
"""The key's ceiling, requests per second (2,000 a minute)."""


class Failed(AssertionError):
    """A figure the run must hold did not hold."""


def trigger(stack: Stack, dag_id: str, conf: dict[str, Any]) -> str:
    run_id = f"dist__{uuid.uuid4().hex[:8]}"
    stack.rest("POST", f"dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": conf})
    return run_id


def run_state(stack: Stack, dag_id: str, run_id: str) -> str:
    return str(stack.rest("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"])


def task_instances(stack: Stack, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
    rows = stack.sql(
        "SELECT map_index, state, pid, try_number, hostname FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s AND task_id = %s ORDER BY map_index",
        dag_id,
        run_id,
        task_id,
    )
    return [dict(zip(("map_index", "state", "pid", "try_number", "hostname"), r, strict=True)) for r in rows]


def write_crm(path: Path, records: list[dict[str, Any]], chunks: int) -> None:
    """The CRM the referral DAG reads: one row per record, its chunk, the record as JSON."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS dist_records (record_key TEXT PRIMARY KEY, chunk INTEGER, payload TEXT)")
        db.executemany(
            "INSERT INTO dist_records VALUES (?, ?, ?)",
            [
                (r["record_id"], i % chunks, json.dumps({k: v for k, v in r.items() if k != "record_id"}))
                for i, r in enumerate(records)
            ],
        )


# -- 1. referral --------------------------------------------------------------------------------------


def referral(stack: Stack, records: int, chunks: int) -> dict[str, Any]:
    prefix = f"dist{uuid.uuid4().hex[:6]}"
    write_crm(stack.crm, make_records(prefix, records), chunks)
    before = stack.sandbox.counts()
    started = time.monotonic()
    run_id = trigger(stack, REFERRAL, {"chunks": chunks})
    say(f"referral: {records} records in {chunks} mapped chunks, run {run_id}")
    workers_seen: dict[int, str] = {}
    killed: str | None = None
    while True:
        state = run_state(stack, REFERRAL, run_id)
        tis = task_instances(stack, REFERRAL, run_id, "refer_invoices")
        for ti in tis:
            if ti["state"] == "running" and ti["pid"]:
                owner = stack.owner_of(ti["pid"])
                if owner is not None:
                    workers_seen[ti["map_index"]] = owner.name
        done = (stack.sandbox.counts() - before).routes["POST /managed-cases"]
        if killed is None and done >= records // 4:
            victim = next(
                (
                    stack.owner_of(ti["pid"])
                    for ti in tis
                    if ti["state"] == "running" and ti["pid"] and stack.owner_of(ti["pid"]) in stack.workers
                ),
                None,
            )
            if victim is not None:
                say(f"referral: {done} creates sent; killing {victim.name} in the middle of its chunk")
                stack.crash(victim)
                killed = victim.name
        if state in ("success", "failed"):
            break
        if time.monotonic() - started > 900:
            raise Failed("the referral run did not finish in 15 minutes")
        time.sleep(2)
    elapsed = time.monotonic() - started
    seen = stack.sandbox.counts() - before
    tis = task_instances(stack, REFERRAL, run_id, "refer_invoices")
    outcomes: list[dict[str, Any]] = []
    for ti in tis:
        value = stack.rest(
            "GET",
            f"dags/{REFERRAL}/dagRuns/{run_id}/taskInstances/refer_invoices/xcomEntries/return_value",
            params={"map_index": ti["map_index"], "deserialize": True},
        )["value"]
        outcomes += value if isinstance(value, list) else json.loads(value)
    statuses = Counter(o["status"] for o in outcomes)
    by_reference: Counter[str] = Counter()
    case_ids: list[str] = []
    with _client(stack) as client:  # the whole portfolio, read after the measured requests
        for case in client.iter_managed_cases():
            reference = case.creditor_reference or ""
            if reference.startswith(f"{prefix}-INV-"):
                by_reference[reference] += 1
                case_ids.append(str(case.id))
    creates = seen.routes["POST /managed-cases"]
    limited = seen.statuses["429"]
    requests = sum(seen.statuses.values())
    best = (-(-records // 2000) - 1) * 60.0
    return {
        "run_id": run_id,
        "state": state,
        "records": records,
        "chunks": chunks,
        "outcomes": dict(statuses),
        "records_failed": records - sum(statuses[s] for s in ("created", "existing")),
        "records_with_one_case": sum(1 for n in by_reference.values() if n == 1),
        "records_duplicated": sum(1 for n in by_reference.values() if n > 1),
        "records_without_case": records - len(by_reference),
        "workers_used": sorted(set(workers_seen.values())),
        "worker_killed": killed,
        "task_tries": {ti["map_index"]: ti["try_number"] for ti in tis},
        "elapsed_seconds": round(elapsed, 1),
        "create_requests": creates,
        "requests": requests,
        "rate_limited": limited,
        "rate_limited_share": limited / requests if requests else 0.0,
        "answered_per_second": round(seen.statuses["200"] / elapsed, 2),
        "ceiling_per_second": round(CEILING, 2),
        "best_seconds": best,
        "of_ceiling": round(best / elapsed, 3) if best else None,  # 2,000 or fewer go in the window's first burst
        "case_ids": case_ids,
    }


def _client(stack: Stack) -> DebituraClient:
    return DebituraClient(stack.sandbox.api_key, stack.sandbox.base_url)


# -- 2. sensors -----------------------------------------------------------------------------------


def sensors(stack: Stack, case_ids: list[str]) -> dict[str, Any]:
    """Deferred sensors over both triggerers, one killed while they wait, then a payment on each case.

    On Airflow 3.3+ every sensor starts and ends in a triggerer (``start_from_trigger``,
    ``end_from_trigger``), so none takes a worker slot; ``on_worker`` counts those that did.
    """
    started = time.monotonic()
    runs = []
    for i in range(0, len(case_ids), SENSORS_PER_RUN):
        runs.append(trigger(stack, SENSORS, {"case_ids": case_ids[i : i + SENSORS_PER_RUN]}))
        time.sleep(3)  # each triggerer takes every unassigned trigger it finds: a run at a time spreads them
    say(f"sensors: {len(case_ids)} deferred sensors in {len(runs)} runs of {SENSORS_PER_RUN}")

    def deferred() -> Counter[int] | None:
        rows = stack.sql(
            "SELECT t.triggerer_id FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = %s AND ti.run_id = ANY(%s) AND ti.state = 'deferred'",
            SENSORS,
            runs,
        )
        spread = Counter(int(r[0]) for r in rows if r[0] is not None)
        return spread if sum(spread.values()) >= len(case_ids) else None

    spread = stack.wait_for("every sensor deferred", deferred, timeout=600, every=3)
    deferred_after = time.monotonic() - started
    say(f"sensors: all deferred after {deferred_after:.0f} s, per triggerer job {dict(spread)}")
    victim = stack.triggerers[0]  # with the sensors on both triggerers' jobs, each holds some
    stack.crash(victim)
    payment = {"date": datetime.now(timezone.utc).date().isoformat(), "paymentAmount": "10.00"}

    def pay(client: DebituraClient, case_id: str) -> None:
        client.advance_test_case(case_id, {"to": "Active"})  # a new case awaits verification; payments need Active
        client.record_test_payment(case_id, payment)

    with _client(stack) as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda case_id: pay(client, case_id), case_ids))
    say(f"sensors: a payment recorded on each of the {len(case_ids)} cases")

    def finished() -> bool:
        return all(run_state(stack, SENSORS, run_id) in ("success", "failed") for run_id in runs)

    stack.wait_for("the sensors' runs to finish", finished, timeout=900, every=5)
    rows = stack.sql("SELECT state, pid FROM task_instance WHERE dag_id = %s AND run_id = ANY(%s)", SENSORS, runs)
    states = Counter(str(r[0]) for r in rows)
    logs = "".join(t.log.read_text(errors="replace") for t in stack.triggerers)
    return {
        "most_deferred_in_one_triggerer": max(spread.values()),
        "deadlocks_in_triggerer_logs": logs.count("DeadlockImminentError"),
        "runs": runs,
        "started": len(rows),
        "completed": states["success"],
        "states": dict(states),
        "on_worker": sum(1 for r in rows if r[1] is not None),
        "deferred_per_triggerer": {str(k): v for k, v in spread.items()},
        "triggerer_killed": victim.name,
        "seconds_to_defer": round(deferred_after, 1),
        "seconds": round(time.monotonic() - started, 1),
    }


# -- 3. webhooks ----------------------------------------------------------------------------------


def webhooks(stack: Stack, count: int, case_ids: list[str]) -> dict[str, Any]:
    from debitura_provider.receiver.plugin import DEFAULT_PATH

    url = f"{stack.api}{DEFAULT_PATH}"
    rng = random.Random(16)
    events = [
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "specVersion": "1.0",
            "event": "payment.created",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "data": {
                "caseId": case_ids[i % len(case_ids)],
                "paymentId": str(uuid.UUID(int=rng.getrandbits(128))),
                "amount": 10,
                "currency": "EUR",
            },
        }
        for i in range(count)
    ]
    deliveries = [*events, *rng.sample(events, count // 5)]
    rng.shuffle(deliveries)

    def deliver(event: dict[str, Any]) -> int:
        body = json.dumps(event).encode()
        for _ in range(10):
            try:
                response = httpx.post(
                    url,
                    content=body,
                    timeout=30,
                    headers={
                        "Content-Type": "application/json",
                        SIGNATURE_HEADER: sign(stack.webhook_secret, body),
                    },
                )
            except httpx.TransportError:
                time.sleep(1)
                continue
            if response.status_code != 503:
                return response.status_code
            time.sleep(1)
        return 503

    say(f"webhooks: {len(deliveries)} signed deliveries ({count} events, {count // 5} redelivered)")
    api_workers: Counter[int] = Counter()
    delivering = threading.Event()

    def sample_api_workers() -> None:  # which API server worker processes hold delivery connections
        import psutil

        server = psutil.Process(stack.api_server.pid)
        while not delivering.wait(0.5):
            for worker in server.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    held = [
                        c
                        for c in worker.net_connections("tcp")
                        if c.laddr and c.laddr.port == stack.api_port and c.status == psutil.CONN_ESTABLISHED
                    ]
                    if held:
                        api_workers[worker.pid] += len(held)

    sampler = threading.Thread(target=sample_api_workers, daemon=True)
    sampler.start()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = Counter(pool.map(deliver, deliveries))
    delivering.set()
    sampler.join()
    ids = [e["id"] for e in events]

    def recorded() -> list[tuple[Any, ...]] | None:
        rows = stack.sql(
            "SELECT event_id, recorded_at IS NOT NULL FROM debitura_webhook_inbox WHERE event_id = ANY(%s)", ids
        )
        return rows if len(rows) == count and all(r[1] for r in rows) else None

    rows = stack.wait_for("every event recorded as an Asset event", recorded, timeout=300, every=3) or []
    asset_events = stack.sql(
        "SELECT extra::json->>'id', count(*) FROM asset_event WHERE extra::json->>'id' = ANY(%s) GROUP BY 1", ids
    )
    once = sum(1 for _, n in asset_events if n == 1)
    return {
        "events": count,
        "deliveries": len(deliveries),
        "answers": {str(k): v for k, v in answers.items()},
        "queued": len(rows),
        "recorded_exactly_once": once,
        "recorded_twice_or_more": sum(1 for _, n in asset_events if n > 1),
        "api_workers_holding_deliveries": len(api_workers),
        "connections_sampled_per_api_worker": sorted(api_workers.values()),
    }


# -- the run --------------------------------------------------------------------------------------


def check(figures: dict[str, Any]) -> list[str]:
    r, s, w = figures["referral"], figures["sensors"], figures["webhooks"]
    problems = []
    if r["records_failed"] or r["records_duplicated"] or r["records_without_case"]:
        problems.append("a record failed, has no case, or has two")
    if r["rate_limited_share"] > 0.02:
        problems.append("more than 2% of the referral's requests were answered 429")
    if len(r["workers_used"]) < 2 or r["worker_killed"] is None:
        problems.append("the chunks did not land on two workers, or no worker was killed mid-chunk")
    if s["completed"] != s["started"]:
        problems.append("a sensor did not complete")
    if len(s["deferred_per_triggerer"]) < 2:
        problems.append("the sensors were not spread over both triggerers")
    if s["deadlocks_in_triggerer_logs"]:
        problems.append("a triggerer logged DeadlockImminentError (the connection lookup blocked its loop)")
    if s["on_worker"] and supports("start_from_trigger"):
        problems.append("a sensor took a worker slot although this Airflow starts and ends them in the triggerer")
    if w["recorded_exactly_once"] != w["events"] or w["recorded_twice_or_more"]:
        problems.append("an event was not recorded exactly once")
    if w["api_workers_holding_deliveries"] < 2:
        problems.append("the deliveries did not reach both API server workers")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.distributed.run", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--chunks", type=int, default=6)
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--webhooks", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args(argv)
    if args.sensors % SENSORS_PER_RUN or args.sensors > args.records:
        parser.error(f"--sensors must be a multiple of {SENSORS_PER_RUN}, at most --records")
    started = time.monotonic()
    try:
        with Stack(workers=args.workers, triggerers=2, api_workers=2, dags=DAGS) as stack:
            stack.wait_for("the DAGs parsed", lambda: _parsed(stack), timeout=300, every=3)
            figures: dict[str, Any] = {"referral": referral(stack, args.records, args.chunks)}
            case_ids = figures["referral"].pop("case_ids")
            figures["webhooks"] = webhooks(stack, args.webhooks, case_ids)
            figures["sensors"] = sensors(stack, case_ids[: args.sensors])
    except KeyboardInterrupt:
        print("\nInterrupted; everything started was stopped.", file=sys.stderr)
        return 130
    figures["duration_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures, indent=2))
    r, s, w = figures["referral"], figures["sensors"], figures["webhooks"]
    say(
        f"records: {r['records']} -> {r['records_with_one_case']} with exactly one case; failed "
        f"{r['records_failed']}, duplicated {r['records_duplicated']}; chunks on {', '.join(r['workers_used'])}, "
        f"{r['worker_killed']} killed mid-chunk"
    )
    say(
        f"rate: {r['rate_limited']} of {r['requests']} requests answered 429 ({r['rate_limited_share']:.2%}); "
        f"{r['records']} cases in {r['elapsed_seconds']} s, where the key's ceiling ({r['ceiling_per_second']}/s, "
        f"2,000 a minute) allows {r['best_seconds']:.0f} s at best: {r['of_ceiling'] or 0:.2f} of it, the killed "
        "chunk and its retry included"
    )
    say(
        f"sensors: {s['completed']} completed of {s['started']} started ({s['on_worker']} took a worker slot), "
        f"all deferred in {s['seconds_to_defer']} s, per triggerer job {s['deferred_per_triggerer']}, "
        f"{s['triggerer_killed']} killed while they waited; done in {s['seconds']} s; "
        f"DeadlockImminentError in the triggerers' logs: {s['deadlocks_in_triggerer_logs']}"
    )
    say(
        f"webhooks: {w['recorded_exactly_once']} of {w['events']} events recorded exactly once from "
        f"{w['deliveries']} deliveries (answers {w['answers']}), taken by {w['api_workers_holding_deliveries']} "
        "API server workers"
    )
    problems = check(figures)
    for problem in problems:
        say(f"FAILED: {problem}")
    say(f"{'FAILED' if problems else 'passed'} in {figures['duration_seconds']:.0f} s; nothing left running")
    return 1 if problems else 0


def _parsed(stack: Stack) -> bool:
    try:
        dags = {
            d["dag_id"] for d in stack.rest("GET", "dags", params={"dag_id_pattern": "debitura_distributed"})["dags"]
        }
    except httpx.HTTPError:
        return False
    return {REFERRAL, SENSORS} <= dags


if __name__ == "__main__":
    sys.exit(main())
