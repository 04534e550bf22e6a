"""One API key, several OS processes: how close they come together to the key's rate ceiling.

Each process is a fresh Python interpreter that refers its part of the records through its own
``DebituraClient`` (a few threads, as a script or an Airflow worker would), knowing nothing of the
others: the only thing they share is the key, and the sandbox's limit on it. The processes start
together (each says "ready" and waits for "go" on its stdin), so interpreter start-up is not timed.

    python -m bench.processes --worker ...   # one process; the parent starts them (see measure())

The figure is ``best / elapsed``: N creates at L a minute need at least ``(ceil(N / L) - 1)``
minutes (the window's first L go at once, then L each time it frees), so 6,000 creates at
2,000/min take at best 120 s. The 429 share is counted at the sandbox, over every request.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.report import figure
from bench.server import REPO, SandboxProcess
from debitura_provider.api import RateLimits

THREADS = 4
"""Requests each process keeps in flight."""


def _worker(
    base_url: str, api_key: str, index: int, count: int, time_scale: float, threads: int, rate_processes: int
) -> int:
    from bench.referral import make_records
    from debitura_provider.api import DebituraClient, DebituraError

    limits = RateLimits(time_scale=time_scale, processes=rate_processes)
    records = make_records(f"proc{index}", count)
    bodies = [{k: v for k, v in r.items() if k != "record_id"} for r in records]
    ids: list[str] = []
    done: list[float] = []
    failed = 0
    lock = threading.Lock()
    with DebituraClient(api_key, base_url, rate_limits=limits) as client:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return 1
        started = time.time()

        def create(body: dict[str, Any]) -> None:
            nonlocal failed
            try:
                case = client.create_managed_case(body)
            except DebituraError:
                with lock:
                    failed += 1
                return
            with lock:
                ids.append(str(case.id))
                done.append(time.time())

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(create, bodies))
        finished = time.time()
        share = client._budget.share
    print(
        json.dumps(
            {
                "index": index,
                "ids": ids,
                "failed": failed,
                "started": started,
                "finished": finished,
                "share": share,
                "done": done,
            }
        ),
        flush=True,
    )
    return 0


def measure(
    sandbox: SandboxProcess,
    processes: int,
    records: int,
    *,
    threads: int = THREADS,
    rate_processes: int = RateLimits.processes,
    floor: float = 0.9,
    name: str,
) -> dict[str, Any]:
    """Refer ``records`` split over ``processes`` processes against ``sandbox`` (which must enforce limits).

    ``floor`` is the target share of the ceiling: 0.9 at Debitura's pace. On a compressed clock the
    sandbox's time to answer a window's burst is a larger part of each window, so it is lower there.
    """
    assert sandbox.limits is not None, "the sandbox must enforce the rate limits"
    settings = sandbox.limits
    per_process = math.ceil(records / processes)
    command = [
        sys.executable,
        "-m",
        "bench.processes",
        "--worker",
        "--base-url",
        sandbox.base_url,
        "--time-scale",
        str(settings.time_scale),
        "--threads",
        str(threads),
        "--count",
        str(per_process),
        "--rate-limit-processes",
        str(rate_processes),
    ]
    children: list[subprocess.Popen[str]] = []
    try:
        for index in range(processes):
            children.append(
                subprocess.Popen(
                    [*command, "--index", str(index)],
                    cwd=REPO,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env={**_env(), "DEBITURA_BENCH_KEY": sandbox.api_key},
                )
            )
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker process did not start")
        before = sandbox.counts()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = []
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if child.wait() != 0 or not line:
                raise RuntimeError("a worker process failed")
            reports.append(json.loads(line))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
    seen = sandbox.counts() - before
    window = 60.0 / settings.time_scale
    total = per_process * processes
    started = min(r["started"] for r in reports)
    elapsed = max(r["finished"] for r in reports) - started
    best = (math.ceil(total / settings.per_minute) - 1) * window
    ids = [i for r in reports for i in r["ids"]]
    segment = window / 6  # Debitura's minute is six 10-second segments
    per_segment = [0] * (int(elapsed // segment) + 1)
    for t in (t for r in reports for t in r["done"]):
        per_segment[min(int((t - started) // segment), len(per_segment) - 1)] += 1
    failed = sum(r["failed"] for r in reports)
    requests = sum(seen.statuses.values())
    limited = seen.statuses["429"]
    fraction = best / elapsed if elapsed else 0.0
    share_429 = limited / requests if requests else 0.0
    anchor = f"rate ceiling: {settings.per_minute} a minute" + (
        f", time x{settings.time_scale:g}" if settings.time_scale != 1 else ""
    )
    return figure(
        name,
        total,
        "requests/s",
        total / elapsed,
        (anchor, total / best if best else None),
        ratio=fraction,
        target=f">= {floor:g}, 0 failed, <= 2% answered 429",
        target_met=fraction >= floor and failed == 0 and len(set(ids)) == total and share_429 <= 0.02,
        processes=processes,
        rate_limit_processes=rate_processes,
        threads_per_process=threads,
        failed_records=failed,
        duplicated_records=len(ids) - len(set(ids)),
        cases_created=len(set(ids)),
        requests=requests,
        rate_limited_responses=limited,
        rate_limited_share=share_429,
        elapsed_seconds=elapsed,
        best_seconds=best,
        created_per_segment=per_segment,
        shares_per_minute_at_end=sorted(r["share"] for r in reports),
    )


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "DEBITURA_BENCH_KEY"}


def main(argv: Sequence[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m bench.processes")
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--rate-limit-processes", type=int, default=RateLimits.processes)
    args = parser.parse_args(argv)
    key = os.environ["DEBITURA_BENCH_KEY"]  # not on the command line, where `ps` would show it
    return _worker(args.base_url, key, args.index, args.count, args.time_scale, args.threads, args.rate_limit_processes)


if __name__ == "__main__":
    sys.exit(main())
