"""Watching N cases: requests per poll cycle, time from payment to detection, memory per watched case.

This project: N :class:`ManagedCaseTrigger` s (one deferred sensor per case, the worst case for
coalescing) in one event loop, as a triggerer runs them, sharing one poller; and, for the request
count, one sensor watching all N cases, poking once. The anchor: one
``GET /managed-cases/{id}`` per case per cycle, as N ``HttpSensor`` s would poll, sent by raw
``httpx``, 8 at a time. Both poll at the same interval; requests are counted at the sandbox.

Each run: a first cycle (the baseline; memory is measured after it), then payments on a few
watched cases early in an interval, the same on both sides, and the time until each is detected.
This project's list requests are counted at the sandbox over every cycle of the run, and its
payments reads apart (one per paid case is the design); the naive side's GETs over one cycle.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import httpx
import psutil

from bench.report import figure
from bench.server import SandboxProcess
from debitura_provider.api import UNLIMITED, AsyncDebituraClient
from debitura_provider.api.watch import CaseWatch, WatchSpec, WatchState, poll, run_sync, shared_poller

CONN_ID = "debitura_bench"
PAID_PER_RUN = 5
NAIVE_CONCURRENCY = 8
"""The naive side's requests in flight: its fastest on this machine (httpx's pool slows down sharply
with many idle connections: 100 at a time made one GET per case several times slower)."""
DETECTION_PATIENCE = 120.0
"""Seconds after the last expected cycle before a payment counts as not detected."""


@contextmanager
def airflow_connection(sandbox: SandboxProcess) -> Iterator[None]:
    """The ``debitura_bench`` connection, as an environment variable, for the triggers' hook.

    The client-side rate budget is off: the sandbox serving the watch benchmark has no limits,
    and a cycle every few seconds is far denser than the sensor's real minute.
    """
    name = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    conn = {
        "conn_type": "debitura",
        "host": sandbox.base_url,
        "password": sandbox.api_key,
        "extra": {"rate_limit_per_minute": 0},
    }
    os.environ[name] = json.dumps(conn)
    try:
        yield
    finally:
        os.environ.pop(name, None)


async def _settle() -> None:
    """Wait until the loop has run everything that was ready (a short sleep comes back about on time)."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        if time.perf_counter() - started < 0.1:
            return


async def _pay(client: AsyncDebituraClient, case_ids: Sequence[str]) -> dict[str, float]:
    paid_at: dict[str, float] = {}
    for case_id in case_ids:
        await client.record_test_payment(case_id, {"date": date.today().isoformat(), "paymentAmount": 10.0})
        paid_at[case_id] = time.perf_counter()
    return paid_at


async def _await_detection(detected: dict[str, float], paid: Sequence[str], patience: float) -> None:
    deadline = time.perf_counter() + patience
    while any(cid not in detected for cid in paid) and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)


def _detection(paid_at: dict[str, float], detected: dict[str, float]) -> dict[str, Any]:
    delays = [detected[cid] - at for cid, at in paid_at.items() if cid in detected]
    return {
        "median_seconds": statistics.median(delays) if delays else None,
        "max_seconds": max(delays) if delays else None,
        "detected": len(delays),
        "paid": len(paid_at),
    }


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def project(sandbox: SandboxProcess, ids: Sequence[str], paid: Sequence[str], interval: float) -> dict[str, Any]:
    """N deferred sensors' triggers in one loop, like a triggerer holding them."""
    from debitura_provider.hooks.debitura import DebituraHook
    from debitura_provider.triggers.managed_cases import ManagedCaseTrigger

    spec, state = WatchSpec.build("new_payment").to_json(), WatchState().to_json()
    detected: dict[str, float] = {}
    failures: list[dict[str, Any]] = []

    async def run(trigger: ManagedCaseTrigger) -> None:
        async for event in trigger.run():
            if event.payload["status"] == "success":
                detected[trigger.case_ids[0]] = time.perf_counter()
            else:
                failures.append(event.payload)
            return

    gc.collect()
    before = await asyncio.to_thread(sandbox.counts)
    rss_before = _rss()
    tracemalloc.start()
    triggers = [
        ManagedCaseTrigger(
            case_ids=[cid],
            watch=spec,
            state=state,
            end_time=time.time() + 3600,
            poll_interval=interval,
            debitura_conn_id=CONN_ID,
        )
        for cid in ids
    ]
    tasks = [asyncio.create_task(run(t)) for t in triggers]
    await asyncio.sleep(0)  # every trigger has subscribed to the loop's shared poller
    poller = shared_poller(CONN_ID, DebituraHook(CONN_ID).get_async_client)
    try:
        async with poller.subscribe(ids[:1], interval=interval) as cycles, _client(sandbox) as payer:
            await cycles.next()
            await _settle()
            traced, bookkeeping = tracemalloc.get_traced_memory()[0], tracemalloc.get_tracemalloc_memory()
            rss = _rss() - rss_before - bookkeeping
            tracemalloc.stop()
            await cycles.next()
            delivered = time.perf_counter()
            paid_at = await _pay(payer, paid)
            await cycles.next()
            cycle_seconds = time.perf_counter() - delivered - interval
            await _await_detection(detected, paid, DETECTION_PATIENCE + interval)
            await cycles.next()  # counted up to a finished cycle: the poller sleeps now
            completed = poller.cycles
            counted = await asyncio.to_thread(sandbox.counts) - before
    finally:
        tracemalloc.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    lists = counted.routes["GET /managed-cases"]
    return {
        "requests_per_cycle": lists / completed,
        "cycles": completed,
        "payment_reads": counted.routes["GET /managed-cases/{id}/payments"],
        "requests_by_route": dict(counted.routes),
        "cycle_seconds": cycle_seconds,
        "detection": _detection(paid_at, detected),
        "memory_per_case_bytes": traced / len(ids),
        "rss_growth_per_case_bytes": rss / len(ids),
        "trigger_errors": failures[:3],
    }


async def naive(sandbox: SandboxProcess, ids: Sequence[str], paid: Sequence[str], interval: float) -> dict[str, Any]:
    """One ``GET /managed-cases/{id}`` per case per cycle; a changed remainder is a detected payment."""
    seen: dict[str, float] = {}
    detected: dict[str, float] = {}
    limits = httpx.Limits(max_connections=NAIVE_CONCURRENCY, max_keepalive_connections=NAIVE_CONCURRENCY)
    async with (
        httpx.AsyncClient(
            base_url=sandbox.base_url, headers={"XApiKey": sandbox.api_key}, limits=limits, timeout=60
        ) as http,
        _client(sandbox) as payer,
    ):

        async def check(case_id: str) -> None:
            response = await http.get(f"/managed-cases/{case_id}")
            response.raise_for_status()
            remainder = response.json()["remainder"]
            if seen.setdefault(case_id, remainder) != remainder:
                detected.setdefault(case_id, time.perf_counter())

        await _bounded(check, ids, NAIVE_CONCURRENCY)
        sleeping = asyncio.ensure_future(asyncio.sleep(interval))
        await _settle()
        before = await asyncio.to_thread(sandbox.counts)
        paid_at = await _pay(payer, paid)
        await sleeping
        started = time.perf_counter()
        await _bounded(check, ids, NAIVE_CONCURRENCY)
        cycle_seconds = time.perf_counter() - started
        counted = await asyncio.to_thread(sandbox.counts) - before
    return {
        "requests_per_cycle": counted.matching("GET "),
        "requests_by_route": dict(counted.routes),
        "cycle_seconds": cycle_seconds,
        "detection": _detection(paid_at, detected),
    }


async def _bounded(check: Callable[[str], Awaitable[None]], ids: Sequence[str], concurrency: int) -> None:
    pending = list(reversed(ids))

    async def worker() -> None:
        while pending:
            await check(pending.pop())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def one_sensor(sandbox: SandboxProcess, ids: Sequence[str]) -> int:
    """Requests of one poke of one sensor watching all N cases: its cycle, run as the sensor runs it."""
    from debitura_provider.hooks.debitura import DebituraHook

    before = sandbox.counts()
    client = DebituraHook(CONN_ID).get_client()
    with client:
        run_sync(client, poll(CaseWatch(ids, WatchSpec.build("new_payment"))))
    return (sandbox.counts() - before).matching("GET ")


def _client(sandbox: SandboxProcess) -> AsyncDebituraClient:
    return AsyncDebituraClient(sandbox.api_key, sandbox.base_url, rate_limits=UNLIMITED)


async def prepare_payable(sandbox: SandboxProcess, case_ids: Sequence[str]) -> None:
    """Test cases take payments once Active; activate the ones to be paid before anyone watches."""
    async with _client(sandbox) as client:
        for case_id in case_ids:
            await client.advance_test_case(case_id, {"to": "Active"})


def paid_cases(ids: Sequence[str]) -> list[str]:
    """A few cases spread over the watched list (so the naive cycle reaches them at different times)."""
    count = min(PAID_PER_RUN, len(ids))
    return [ids[(2 * k + 1) * len(ids) // (2 * count)] for k in range(count)]


def compare(sandbox: SandboxProcess, ids: Sequence[str], interval: float) -> list[dict[str, Any]]:
    """The figures for one N: each side on its own event loop, this project first.

    The naive side pays the same cases a second time; it compares remainders with its own first
    cycle, so the earlier payment is its baseline.
    """
    paid = paid_cases(ids)
    single = one_sensor(sandbox, ids)  # before anything is paid: a quiet cycle
    asyncio.run(prepare_payable(sandbox, paid))
    ours = asyncio.run(project(sandbox, ids, paid, interval))
    theirs = asyncio.run(naive(sandbox, ids, paid, interval))
    n = len(ids)
    per_cycle, naive_per_cycle = ours["requests_per_cycle"], theirs["requests_per_cycle"]
    at_target_size = n == 10_000
    requests = figure(
        "watch_requests_per_cycle",
        n,
        "requests/cycle",
        per_cycle,
        ("watch_requests_per_cycle_naive", naive_per_cycle),
        target="<= 100" if at_target_size else None,
        target_met=per_cycle <= 100 if at_target_size else None,
        one_sensor_requests_per_cycle=single,
        cycles=ours["cycles"],
        payment_reads=ours["payment_reads"],
        paid_cases=len(paid),
        cycle_seconds=ours["cycle_seconds"],
        anchor_cycle_seconds=theirs["cycle_seconds"],
        requests_by_route=ours["requests_by_route"],
        anchor_requests_by_route=theirs["requests_by_route"],
        poll_interval_seconds=interval,
    )
    ours_detect, theirs_detect = ours["detection"], theirs["detection"]
    detection = figure(
        "watch_payment_detection_seconds",
        n,
        "s (median)",
        ours_detect["median_seconds"],
        ("naive, one GET per case", theirs_detect["median_seconds"]),
        detail=ours_detect,
        anchor_detail=theirs_detect,
        poll_interval_seconds=interval,
        trigger_errors=ours["trigger_errors"],
    )
    memory = figure(
        "watch_memory_per_case_bytes",
        n,
        "bytes (tracemalloc)",
        ours["memory_per_case_bytes"],
        None,
        rss_growth_per_case_bytes=ours["rss_growth_per_case_bytes"],
    )
    return [requests, detection, memory]
