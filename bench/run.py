"""``make bench``: start sandboxes, measure each figure beside its anchor, print the table, write the results.

    python -m bench.run                # the full run (bench/results.json)
    python -m bench.run --quick        # tiny sizes, seconds: proves the script still works

Phases: the hook's overhead, referral against raw ``httpx`` (which also creates the cases to
watch), watching N = 100, 1,000 and 10,000 cases, all on a sandbox without limits; then referral
on a second sandbox enforcing Debitura's limits on a compressed clock. Each sandbox is its own
process on 127.0.0.1 and is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pydantic

from bench import overhead, portfolio, processes, referral, watch
from bench.report import table
from bench.server import REPO, SandboxProcess
from debitura_provider import __version__
from debitura_provider.sandbox import RateLimitSettings

RESULTS = REPO / "bench" / "results.json"
COMPRESSED_LIMITS = RateLimitSettings(time_scale=4.0)
"""Debitura's limits, with a minute of 15 s: a ceiling of 133.3 requests/s."""
SHARED_KEY_LIMITS = RateLimitSettings(time_scale=2.0)
"""Debitura's limits with a minute of 30 s, for 8 processes sharing one key."""


@dataclass(frozen=True)
class Plan:
    """What one run measures, and how big."""

    watch_sizes: tuple[int, ...] = (100, 1_000, 10_000)
    poll_interval: float = 2.0
    referral_records: int = 10_000
    referral_rounds: int = 10
    limited_records: int = 10_000
    limits: RateLimitSettings = COMPRESSED_LIMITS
    overhead_iterations: int = 300
    overhead_rounds: int = 9
    day_cases: int = 10_000
    day_minutes: int = 1440
    processes: int = 8
    processes_records: int = 6_000
    processes_limits: RateLimitSettings = SHARED_KEY_LIMITS
    """A minute of 30 s: 8 client processes and the sandbox share the cores, and a burst of 2,000
    creates must fit well inside one window for the figure to measure the budget, not the machine.
    Its target is 0.8 of the ceiling (13 s of burst is 43% of a 30-s window, 22% of a real minute);
    the 0.9 target is measured at the real pace by ``scripts/distributed/rate_budget.py``."""


QUICK = Plan(
    watch_sizes=(10, 30),
    poll_interval=0.25,
    referral_records=100,
    referral_rounds=2,
    limited_records=60,
    limits=RateLimitSettings(per_minute=20, time_scale=60.0),
    overhead_iterations=20,
    overhead_rounds=3,
    day_cases=60,
    day_minutes=120,
    processes=2,
    processes_records=60,
    processes_limits=RateLimitSettings(per_minute=20, time_scale=60.0),
)


@contextmanager
def airflow_home() -> Iterator[None]:
    """A throwaway ``AIRFLOW_HOME`` unless one is set: the hook and triggers import Airflow."""
    if os.environ.get("AIRFLOW_HOME"):
        yield
        return
    home = tempfile.mkdtemp(prefix="debitura-bench-airflow-")
    os.environ["AIRFLOW_HOME"] = home
    try:
        yield
    finally:
        os.environ.pop("AIRFLOW_HOME", None)
        shutil.rmtree(home, ignore_errors=True)


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def measure(plan: Plan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every figure, and the settings of the sandboxes they were measured against."""
    figures: list[dict[str, Any]] = []
    with SandboxProcess() as sandbox, watch.airflow_connection(sandbox):
        sandboxes = {"unlimited": sandbox.settings()}
        _say("hook overhead against bare httpx.Client ...")
        figures.append(overhead.hook_vs_httpx(sandbox, plan.overhead_iterations, plan.overhead_rounds))
        _say(f"referral of {plan.referral_records} records, against raw httpx ...")
        figure, ids = asyncio.run(referral.versus_raw_httpx(sandbox, plan.referral_records, plan.referral_rounds))
        figures.append(figure)
        if len(ids) < sum(plan.watch_sizes):
            raise RuntimeError(f"only {len(ids)} cases were created; watching needs {sum(plan.watch_sizes)}")
        start = 0
        for size in plan.watch_sizes:
            _say(f"watching {size} cases: deferred triggers against one GET per case ...")
            figures += watch.compare(sandbox, ids[start : start + size], plan.poll_interval)
            start += size
        _say(f"a simulated day following {plan.day_cases} cases with the portfolio scan ...")
        figures += portfolio.day_budget(sandbox, ids[: plan.day_cases], plan.day_minutes)
    with SandboxProcess(plan.limits) as limited:
        sandboxes["rate_limited"] = limited.settings()
        _say(f"referral of {plan.limited_records} records within the rate limit (time x{plan.limits.time_scale:g}) ...")
        figures.append(asyncio.run(referral.versus_rate_ceiling(limited, plan.limited_records)))
    with SandboxProcess(plan.processes_limits) as shared:
        sandboxes["rate_limited_processes"] = shared.settings()
        _say(f"referral of {plan.processes_records} records by {plan.processes} processes sharing one key ...")
        figures.append(
            processes.measure(
                shared, plan.processes, plan.processes_records, floor=0.8, name="referral_8_processes_vs_rate_ceiling"
            )
        )
    return figures, sandboxes


def conditions(plan: Plan, sandboxes: dict[str, Any], load_before: Sequence[float]) -> dict[str, Any]:
    from airflow import __version__ as airflow_version

    return {
        "cpu_cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "pydantic": pydantic.VERSION,
        "airflow": airflow_version,
        "provider": __version__,
        "sandboxes": sandboxes,
        "plan": asdict(plan),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the benchmark runs, in seconds")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where to write the results (default {RESULTS}; a quick run writes none unless given)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    output = args.output or (None if args.quick else RESULTS)
    started, load_before = time.perf_counter(), os.getloadavg()
    try:
        with airflow_home():
            figures, sandboxes = measure(plan)
            results = {
                "command": "python -m bench.run --quick" if args.quick else "make bench",
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "duration_seconds": round(time.perf_counter() - started, 1),
                "targets_met": None if args.quick else all(f["target_met"] for f in figures if f["target"] is not None),
                "conditions": conditions(plan, sandboxes, load_before),
                "figures": figures,
            }
    except KeyboardInterrupt:
        print("\nInterrupted; the sandboxes were stopped.", file=sys.stderr)
        return 130
    print()
    print(table(results))
    if output is not None:
        partial = output.with_name(output.name + ".tmp")
        partial.write_text(json.dumps(results, indent=2) + "\n")
        partial.replace(output)  # a run cut short never leaves half a file
        print(f"\nWritten to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
