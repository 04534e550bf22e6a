"""``make bench`` end to end at tiny sizes, so the benchmark cannot rot.

The figures themselves are not asserted (timings are no test); what they stand on is: requests
are counted at the sandbox, coalescing holds, every payment is detected, no record fails under
the rate limit, and no sandbox process is left behind.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import psutil
import pytest

from bench import run
from bench.watch import CONN_ID

FIGURES = {
    "hook_overhead_vs_httpx",
    "referral_vs_raw_httpx",
    "watch_requests_per_cycle",
    "watch_payment_detection_seconds",
    "watch_memory_per_case_bytes",
    "referral_vs_rate_ceiling",
    "referral_8_processes_vs_rate_ceiling",
    "portfolio_requests_per_day",
    "portfolio_detection_seconds",
    "portfolio_missed_payments",
}


def test_quick_bench_measures_every_figure_and_stops_its_sandboxes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "results.json"
    assert run.main(["--quick", "--output", str(output)]) == 0

    results = json.loads(output.read_text())
    figures = results["figures"]
    assert {f["name"] for f in figures} == FIGURES
    assert all({"value", "anchor", "ratio", "target", "target_met"} <= f.keys() for f in figures)
    by_name = {(f["name"], f["n"]): f for f in figures}
    for n in run.QUICK.watch_sizes:
        requests = by_name["watch_requests_per_cycle", n]
        assert requests["value"] == math.ceil(n / 100), "N triggers share ceil(N/100) list requests"
        assert requests["one_sensor_requests_per_cycle"] == math.ceil(n / 100), "so does one sensor's poke"
        assert requests["payment_reads"] == requests["paid_cases"], "payments are read only where money moved"
        assert requests["anchor"]["value"] == n, "the naive way sends one GET per case"
        detection = by_name["watch_payment_detection_seconds", n]
        assert detection["detail"]["detected"] == detection["detail"]["paid"] > 0
        assert detection["anchor_detail"]["detected"] == detection["anchor_detail"]["paid"]
        assert by_name["watch_memory_per_case_bytes", n]["value"] > 0
    day = by_name["portfolio_missed_payments", run.QUICK.day_cases]
    assert day["payments"] > 0 and day["missed"] == day["duplicated"] == 0, "every payment reported once"
    assert by_name["portfolio_detection_seconds", run.QUICK.day_cases]["detected"] == day["payments"]
    budget = by_name["portfolio_requests_per_day", run.QUICK.day_cases]
    assert budget["ids_chunk_requests_per_cycle"] == math.ceil(run.QUICK.day_cases / 100)
    assert budget["payment_reads"] <= budget["changed_cases"], "payments are read only where money moved"
    assert by_name["referral_vs_raw_httpx", run.QUICK.referral_records]["failed_records"] == 0
    limited = by_name["referral_vs_rate_ceiling", run.QUICK.limited_records]
    assert limited["failed_records"] == 0
    shared = by_name["referral_8_processes_vs_rate_ceiling", run.QUICK.processes_records]
    assert shared["failed_records"] == shared["duplicated_records"] == 0
    assert shared["cases_created"] == run.QUICK.processes_records, "every process's records, each once"
    assert shared["processes"] == run.QUICK.processes
    assert (
        results["conditions"]["sandboxes"]["rate_limited"]["rate_limits"]["time_scale"] == run.QUICK.limits.time_scale
    )

    assert "| figure" in capsys.readouterr().out
    assert psutil.Process().children(recursive=True) == []
    assert f"AIRFLOW_CONN_{CONN_ID.upper()}" not in os.environ
