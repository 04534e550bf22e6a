"""The day budget: following a portfolio of open cases for a simulated day, counted at the sandbox.

One simulated day is ``minutes`` poll cycles at a 60 s interval. Before it starts, the cases
that will change are made Active (test cases take payments then); the scan sets its baseline.
Then, minute by minute: the changes scheduled for that minute are made (about 2% of the cases
over the day, spread at random, plus two bursts of more than a page), and one scan cycle runs,
:class:`~debitura_provider.api.watch.scan.PortfolioScan` driven by the async client as the
trigger drives it. Requests are counted at the sandbox's edge.

Requests a cycle are what the scan reports sending; their total over the day is checked against
the sandbox's own count. Compared with: today's ``Ids`` chunks (one cycle of ``ceil(N / 100)`` list requests measured at
the sandbox, times the cycles of a day) and one GET per case (N a cycle, by construction).

Time from payment to event, in simulated time: a payment is placed at a random second of the
minute before the cycle that reports it, so its wait is the rest of that minute, plus the real
(not compressed) time the cycle took until it produced the event. Missed payments are those made
and never reported as ``payment.created``; duplicated ones are reported more than once.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bench.report import figure
from bench.server import SandboxProcess
from debitura_provider.api import UNLIMITED, AsyncDebituraClient
from debitura_provider.api.watch import run_async
from debitura_provider.api.watch.scan import PortfolioScan, ScanState, events_of

INTERVAL = 60.0
DAILY_CHANGE_SHARE = 0.02
BURSTS = 2
BURST_SIZE = 120
"""Changes in one minute during a burst: more than a page, so the scan reads two."""
CLOSE_SHARE = 0.2
"""Of the changes, those closing the case without payment; the rest are payments."""
DAY_BUDGET = 3_000
SEED = 15


@dataclass(frozen=True)
class Change:
    minute: int
    second: float
    case_id: str
    close: bool


def schedule(case_ids: Sequence[str], minutes: int, rng: random.Random) -> list[Change]:
    """About 2% of the cases changing at random minutes, and ``BURSTS`` bursts of ``BURST_SIZE``."""
    spread = max(1, round(len(case_ids) * DAILY_CHANGE_SHARE * minutes / 1440))
    burst = min(BURST_SIZE, max(1, len(case_ids) // 10))
    chosen = rng.sample(list(case_ids), min(len(case_ids), spread + BURSTS * burst))
    changes = [
        Change(rng.randrange(1, minutes), rng.uniform(0, INTERVAL), cid, rng.random() < CLOSE_SHARE)
        for cid in chosen[:spread]
    ]
    for b in range(BURSTS):
        minute = (b + 1) * minutes // (BURSTS + 1)
        for cid in chosen[spread + b * burst : spread + (b + 1) * burst]:
            changes.append(Change(minute, rng.uniform(0, INTERVAL), cid, False))
    return sorted(changes, key=lambda c: (c.minute, c.second))


def _client(sandbox: SandboxProcess) -> AsyncDebituraClient:
    return AsyncDebituraClient(sandbox.api_key, sandbox.base_url, rate_limits=UNLIMITED)


async def _apply(client: AsyncDebituraClient, change: Change) -> str | None:
    """Make one change; the payment id, if it was a payment."""
    if change.close:
        await client.advance_test_case(change.case_id, {"to": "Closed:NoPayment"})
        return None
    paid = await client.record_test_payment(
        change.case_id, {"date": date.today().isoformat(), "paymentAmount": "10.00"}
    )
    return str(paid.payment_id)


async def simulate_day(sandbox: SandboxProcess, case_ids: Sequence[str], minutes: int) -> dict[str, Any]:
    rng = random.Random(SEED)
    changes = schedule(case_ids, minutes, rng)
    by_minute: dict[int, list[Change]] = {}
    for change in changes:
        by_minute.setdefault(change.minute, []).append(change)
    async with _client(sandbox) as client:
        for cid in dict.fromkeys(c.case_id for c in changes):
            await client.advance_test_case(cid, {"to": "Active"})
        state = ScanState()
        minute = 0

        def clock() -> float:  # the scan's own clock runs on simulated time: a cycle every 60 s
            return minute * INTERVAL

        await run_async(client.send, PortfolioScan(state, clock=clock).cycle())  # the baseline
        start = sandbox.counts()
        per_cycle: list[int] = []
        made: dict[str, float] = {}  # payment id -> its second in the minute
        reported: Counter[str] = Counter()
        waits: list[float] = []
        for minute in range(1, minutes + 1):
            for change in by_minute.get(minute, ()):
                pid = await _apply(client, change)
                if pid is not None:
                    made[pid] = change.second
            began = time.perf_counter()
            result = await run_async(client.send, PortfolioScan(state, clock=clock).cycle())
            took = time.perf_counter() - began
            per_cycle.append(result.list_requests + result.payment_requests)
            for event in events_of(result, ["payment.created"]):
                pid = event["data"]["paymentId"]
                reported[pid] += 1
                if pid in made:
                    waits.append(INTERVAL - made[pid] + took)
        watched = sandbox.counts() - start
    if watched.matching("GET /managed-cases") != sum(per_cycle):
        raise RuntimeError("the sandbox counted other requests than the scan reported sending")
    missed = [pid for pid in made if reported[pid] == 0]
    duplicated = [pid for pid, n in reported.items() if n > 1]
    return {
        "per_cycle": per_cycle,
        "list_requests": watched.routes.get("GET /managed-cases", 0),
        "payment_reads": watched.matching("GET /managed-cases/{id}/payments"),
        "requests": watched.matching("GET /managed-cases"),
        "payments": len(made),
        "changes": len(changes),
        "changed_cases": len({c.case_id for c in changes}),
        "missed": len(missed),
        "duplicated": len(duplicated),
        "waits": waits,
    }


async def ids_chunk_cycle(sandbox: SandboxProcess, case_ids: Sequence[str]) -> int:
    """Today's way, one cycle: ``GET /managed-cases?Ids=...`` in chunks of 100, counted at the sandbox."""
    async with _client(sandbox) as client:
        before = sandbox.counts()
        await client.get_managed_cases(list(case_ids))
        return (sandbox.counts() - before).matching("GET /managed-cases")


def day_budget(sandbox: SandboxProcess, case_ids: Sequence[str], minutes: int = 1440) -> list[dict[str, Any]]:
    """The figures: requests a day (scan vs Ids chunks vs one GET per case), detection, missed payments."""
    n = len(case_ids)
    chunks = asyncio.run(ids_chunk_cycle(sandbox, case_ids))
    day = asyncio.run(simulate_day(sandbox, case_ids, minutes))
    scale = 1440 / minutes  # a quick run simulates part of a day
    per_day = day["requests"] * scale
    full = minutes == 1440 and n >= 10_000
    requests = figure(
        "portfolio_requests_per_day",
        n,
        "requests/day",
        per_day,
        ("Ids chunks", chunks * 1440),
        target=f"<= {DAY_BUDGET:,}" if full else None,
        target_met=per_day <= DAY_BUDGET if full else None,
        one_get_per_case_per_day=n * 1440,
        ids_chunk_requests_per_cycle=chunks,
        scan_requests_per_cycle_mean=statistics.fmean(day["per_cycle"]),
        scan_requests_per_cycle_max=max(day["per_cycle"]),
        scan_cycles_with_one_request=sum(1 for r in day["per_cycle"] if r == 1),
        list_requests=day["list_requests"] * scale,
        payment_reads=day["payment_reads"],
        changes=day["changes"],
        changed_cases=day["changed_cases"],
        simulated_minutes=minutes,
        poll_interval_seconds=INTERVAL,
    )
    waits = day["waits"]
    worst = max(waits) if waits else None
    detection = figure(
        "portfolio_detection_seconds",
        n,
        "s (simulated, worst)",
        worst,
        None,
        target=f"<= {INTERVAL + 5:g}",
        target_met=worst is not None and worst <= INTERVAL + 5 and len(waits) == day["payments"],
        median_seconds=statistics.median(waits) if waits else None,
        payments=day["payments"],
        detected=len(waits),
    )
    missed = figure(
        "portfolio_missed_payments",
        n,
        "missed + duplicated",
        day["missed"] + day["duplicated"],
        None,
        target="0",
        target_met=day["missed"] == day["duplicated"] == 0 and day["payments"] > 0,
        missed=day["missed"],
        duplicated=day["duplicated"],
        payments=day["payments"],
    )
    return [requests, detection, missed]
