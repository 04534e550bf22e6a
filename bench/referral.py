"""Referral throughput: the bulk path against raw ``httpx``, and against Debitura's rate ceiling.

Both sides of a comparison refer the same kind of records to the same sandbox at the same
concurrency; raw ``httpx`` gets them pre-validated, with the Idempotency-Key precomputed, and only
posts them and reads the JSON answer. Rounds alternate which side goes first, so a machine that
slows down during the run (or a sandbox that grows) weighs on both sides alike.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench.report import figure
from bench.server import SandboxProcess
from debitura_provider.api import UNLIMITED, AsyncDebituraClient, RateLimits, endpoints
from debitura_provider.api.referral import Outcome, Status, prepare, refer

JSON = "application/json"
CONCURRENCY = 8
"""``refer``'s default ``max_concurrency``; raw ``httpx`` gets the same."""

_DEBTORS = (
    {
        "type": "Company",
        "name": "Pacific Trading LLC",
        "contactPerson": "John Smith",
        "countryAlpha2": "US",
        "stateAlpha2": "CA",
        "city": "San Francisco",
        "email": "accounts@pacifictrading.example",
    },
    {
        "type": "Company",
        "name": "Nordlys Handel ApS",
        "contactPerson": "Mette Holm",
        "countryAlpha2": "DK",
        "city": "Aarhus",
        "email": "bogholderi@nordlys.example",
    },
    {
        "type": "Private",
        "name": "Erika Mustermann",
        "countryAlpha2": "DE",
        "city": "Köln",
        "email": "erika@mustermann.example",
    },
    {
        "type": "Company",
        "name": "Thames Fittings Ltd",
        "contactPerson": "Alan Price",
        "countryAlpha2": "GB",
        "city": "Reading",
        "phone": "+44 118 496 0000",
    },
)


def make_records(prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` distinct, valid test referrals shaped like a CRM extract (``record_id`` + the body)."""
    return [
        {
            "record_id": f"{prefix}-{i}",
            "creditorCompanyName": "Bench Agency Client A/S",
            "creditorCountryAlpha2": "DK",
            "currencyCode": ("EUR", "USD", "DKK", "GBP")[i % 4],
            "amountToRecover": round(250 + (i * 37) % 9_000 + (i % 100) / 100, 2),
            "date": "2026-09-01",
            "dueDate": "2026-10-01",
            "creditorReference": f"{prefix}-INV-{i:06d}",
            "isTest": True,
            "tag": "bench",
            "debtor": _DEBTORS[i % len(_DEBTORS)],
        }
        for i in range(count)
    ]


@dataclass
class Side:
    """One side of a comparison: records referred, seconds spent, this process's CPU, records not created."""

    records: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    failed: int = 0

    def add(self, other: Side) -> None:
        self.records += other.records
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.failed += other.failed

    @property
    def cpu_ms_per_record(self) -> float:
        return self.cpu_seconds / self.records * 1000 if self.records else 0.0

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


async def _raw_httpx(http: httpx.AsyncClient, records: Sequence[dict[str, Any]], ids: list[str]) -> Side:
    referrals, rejected = prepare(records)
    assert not rejected, "the benchmark's records are valid"
    calls = [endpoints.create_managed_case(r.request) for r in referrals]
    # A hand-written client writes amounts as floats: the bodies are built before the clock starts.
    queue = [
        (json.dumps(c.json, default=float), {"Content-Type": JSON, "Idempotency-Key": c.idempotency_key or ""})
        for c in calls
    ]
    queue.reverse()
    side = Side(records=len(queue))

    async def worker() -> None:
        while queue:
            body, headers = queue.pop()
            response = await http.post("/managed-cases", content=body, headers=headers)
            if response.status_code == 200:
                ids.append(response.json()["id"])
            else:
                side.failed += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    side.seconds, side.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return side


async def _project(client: AsyncDebituraClient, records: Sequence[dict[str, Any]], ids: list[str]) -> Side:
    started, cpu = time.perf_counter(), time.process_time()
    outcomes = await refer(client, records, max_concurrency=CONCURRENCY)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    ids.extend(str(o.case.id) for o in outcomes if o.case is not None)
    return Side(records=len(records), seconds=seconds, cpu_seconds=cpu_seconds, failed=_failed(outcomes))


def _failed(outcomes: Sequence[Outcome]) -> int:
    return sum(1 for o in outcomes if o.status is not Status.CREATED)


async def versus_raw_httpx(sandbox: SandboxProcess, count: int, rounds: int) -> tuple[dict[str, Any], list[str]]:
    """Refer ``count`` records each way; returns the figure and the ids of every case created."""
    ids: list[str] = []
    ours, raw = Side(), Side()
    paired: list[float] = []
    per_round = math.ceil(count / rounds)
    headers = {"XApiKey": sandbox.api_key}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with (
        AsyncDebituraClient(sandbox.api_key, sandbox.base_url, rate_limits=UNLIMITED) as client,
        httpx.AsyncClient(base_url=sandbox.base_url, headers=headers, limits=limits, timeout=30) as http,
    ):
        for n in range(rounds):
            size = min(per_round, count - n * per_round)
            ours_first = n % 2 == 0
            this_round: dict[bool, Side] = {}
            for mine in (ours_first, not ours_first):
                records = make_records(f"{'ours' if mine else 'raw'}{n}", size)
                side = this_round[mine] = await (
                    _project(client, records, ids) if mine else _raw_httpx(http, records, ids)
                )
                (ours if mine else raw).add(side)
            paired.append(this_round[True].per_second / this_round[False].per_second)
    ratio = ours.per_second / raw.per_second
    result = figure(
        "referral_vs_raw_httpx",
        count,
        "cases/s",
        ours.per_second,
        ("raw httpx.AsyncClient, pre-validated payloads", raw.per_second),
        target=">= 0.8",
        target_met=ratio >= 0.8 and ours.failed == 0,
        failed_records=ours.failed,
        anchor_failed_records=raw.failed,
        client_cpu_ms_per_record=ours.cpu_ms_per_record,
        anchor_client_cpu_ms_per_record=raw.cpu_ms_per_record,
        median_round_ratio=statistics.median(paired),
        concurrency=CONCURRENCY,
        rounds=rounds,
    )
    return result, ids


class _Timestamps(httpx.AsyncBaseTransport):
    """Notes when each answer arrived and its status (the client's own transport, wrapped)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100))
        self.answers: list[tuple[float, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.answers.append((time.perf_counter(), response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def versus_rate_ceiling(sandbox: SandboxProcess, count: int) -> dict[str, Any]:
    """Refer ``count`` records through a sandbox enforcing the limits on a compressed clock.

    The client's budget runs on the same compressed clock. The figure is the rate of accepted
    creates over the whole windows the run fills (the first window's burst is part of every
    sliding-window limit, so counting whole windows compares like with like), against
    ``per_minute`` per compressed minute: 33.3/s at Debitura's pace, times the compression.
    """
    assert sandbox.limits is not None
    settings = sandbox.limits
    limits = RateLimits(settings.per_minute, settings.per_hour, settings.per_day, time_scale=settings.time_scale)
    window = 60.0 / settings.time_scale
    full_windows = max(1, count // settings.per_minute - 1)
    transport = _Timestamps()
    before = sandbox.counts()
    async with AsyncDebituraClient(
        sandbox.api_key, sandbox.base_url, rate_limits=limits, transport=transport
    ) as client:
        started = time.perf_counter()
        outcomes = await refer(client, make_records("limited", count), max_concurrency=CONCURRENCY)
        elapsed = time.perf_counter() - started
    seen = sandbox.counts() - before
    accepted = sum(1 for at, status in transport.answers if status == 200 and at - started < full_windows * window)
    rate = accepted / (full_windows * window)
    ceiling = settings.per_minute / window
    failed = _failed(outcomes)
    anchor = f"rate ceiling: {settings.per_minute} a minute, time x{settings.time_scale:g}"
    return figure(
        "referral_vs_rate_ceiling",
        count,
        "requests/s",
        rate,
        (anchor, ceiling),
        target=">= 0.9 with 0 failed records",
        target_met=rate / ceiling >= 0.9 and failed == 0,
        failed_records=failed,
        rate_limited_responses=seen.statuses["429"],
        measured_windows=full_windows,
        window_seconds=window,
        elapsed_seconds=elapsed,
        overall_rate=count / elapsed,
        concurrency=CONCURRENCY,
    )
