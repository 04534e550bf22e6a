"""The results as a Markdown table: printed by ``make bench``, quoted by the README.

python -m bench.report [bench/results.json]   # the table of a stored run
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HEADER = ("figure", "N", "this project", "anchor", "ratio", "target", "met")


def figure(
    name: str,
    n: int,
    unit: str,
    value: float | None,
    anchor: tuple[str, float | None] | None,
    *,
    ratio: float | None = None,
    target: str | None = None,
    target_met: bool | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """One entry of the results: the figure, the anchor it is compared to, their ratio, the target.

    ``ratio`` defaults to value / anchor; give it when the comparison is made otherwise (say, a
    median of per-round ratios).
    """
    anchor_value = anchor[1] if anchor else None
    if ratio is None and value is not None and anchor_value:
        ratio = value / anchor_value
    return {
        "name": name,
        "n": n,
        "unit": unit,
        "value": value,
        "anchor": {"name": anchor[0], "value": anchor_value} if anchor else None,
        "ratio": ratio,
        "target": target,
        "target_met": target_met,
        **detail,
    }


def _number(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def _cells(figure: dict[str, Any]) -> tuple[str, str]:
    """This project's value and the anchor's, formatted for the figure's unit."""
    name, anchor = figure["name"], figure["anchor"]
    anchor_value = anchor["value"] if anchor else None
    if name == "watch_requests_per_cycle":
        return _number(figure["value"], digits=0 if figure["value"] == int(figure["value"]) else 2), (
            f"{anchor_value:,} (one GET per case)"
        )
    if name == "watch_payment_detection_seconds":
        return _number(figure["value"], " s"), _number(anchor_value, " s") + " (naive)"
    if name == "watch_memory_per_case_bytes":
        return _number(figure["value"] / 1024, " KiB"), "-"
    if name == "hook_overhead_vs_httpx":
        return _number(figure["value"], " ms", 2), _number(anchor_value, " ms", 2) + " (bare httpx.Client)"
    if name == "referral_vs_raw_httpx":
        return _number(figure["value"], " cases/s", 0), _number(anchor_value, " cases/s", 0) + " (raw httpx)"
    if name == "referral_vs_rate_ceiling":
        ours = (
            f"{figure['value']:,.1f} req/s, {figure['failed_records']} failed, {figure['rate_limited_responses']} x 429"
        )
        return ours, f"{anchor_value:,.1f} req/s ({anchor['name']})"
    if name == "portfolio_requests_per_day":
        ours = f"{figure['value']:,.0f}/day ({figure['scan_requests_per_cycle_mean']:.2f}/cycle)"
        return ours, (
            f"{anchor_value:,.0f}/day ({anchor['name']}); {figure['one_get_per_case_per_day']:,.0f}/day "
            "(one GET per case)"
        )
    if name == "portfolio_detection_seconds":
        return _number(figure["value"], " s") + f" (median {figure['median_seconds']:.1f} s)", "-"
    if name == "portfolio_missed_payments":
        return f"{figure['missed']} missed, {figure['duplicated']} duplicated of {figure['payments']}", "-"
    if name == "referral_8_processes_vs_rate_ceiling":
        ours = (
            f"{figure['processes']} processes: {figure['elapsed_seconds']:,.1f} s, {figure['failed_records']} "
            f"failed, {figure['rate_limited_share']:.1%} x 429"
        )
        return ours, f"{figure['best_seconds']:,.1f} s ({anchor['name']})"
    return str(figure["value"]), str(anchor_value)


def table(results: dict[str, Any]) -> str:
    rows = [HEADER, tuple("---" for _ in HEADER)]
    for figure in results["figures"]:
        ours, anchor = _cells(figure)
        met = {True: "yes", False: "NO", None: ""}[figure["target_met"]]
        ratio = _number(figure["ratio"], digits=3) if figure["ratio"] is not None else "-"
        rows.append((f"`{figure['name']}`", f"{figure['n']:,}", ours, anchor, ratio, figure["target"] or "", met))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    conditions = results["conditions"]
    lines.append("")
    lines.append(
        f"{results['command']}, {results['date']}: {conditions['cpu_cores']} cores ({conditions['cpu_model']}), "
        f"load average {conditions['load_average_before'][0]:.1f} before, Python {conditions['python']}, "
        f"httpx {conditions['httpx']}; {results['duration_seconds']:.0f} s. "
        + {True: "Targets met: yes.", False: "Targets met: NO.", None: "Targets not judged (quick run)."}[
            results["targets_met"]
        ]
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else Path(__file__).with_name("results.json")
    print(table(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
