"""The hook's cost per request against a bare ``httpx.Client``: same endpoint, same kept-alive connection.

``DebituraHook(...).get_client().get_me()`` validates nothing on the way out but does everything a
task pays for on every call: the rate budget, the retry wrapper, error mapping, parsing into a
model. The bare side sends the same ``GET /me`` and decodes the JSON. Rounds alternate the order;
the figure is the median of the per-round ratios, so a machine that slows down for a while
weighs on both sides of a round alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.report import figure
from bench.server import SandboxProcess
from bench.watch import CONN_ID


def _per_request(call: Callable[[], Any], iterations: int) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        call()
    return (time.perf_counter() - started) / iterations


def hook_vs_httpx(sandbox: SandboxProcess, iterations: int, rounds: int) -> dict[str, Any]:
    """Needs the ``debitura_bench`` connection (:func:`bench.watch.airflow_connection`)."""
    from debitura_provider.hooks.debitura import DebituraHook

    hook = DebituraHook(CONN_ID)
    with httpx.Client(base_url=sandbox.base_url, headers={"XApiKey": sandbox.api_key}) as http:

        def bare() -> Any:
            response = http.get("/me")
            response.raise_for_status()
            return response.json()

        def through_hook() -> Any:
            return hook.get_client().get_me()

        bare(), through_hook()  # connect both, and warm up
        ours: list[float] = []
        theirs: list[float] = []
        for n in range(rounds):
            for mine in (n % 2 == 0, n % 2 != 0):
                (ours if mine else theirs).append(_per_request(through_hook if mine else bare, iterations))
        hook.get_client().close()
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    ratio = statistics.median(ratios)
    return figure(
        "hook_overhead_vs_httpx",
        iterations * rounds,
        "ms/request (median round)",
        statistics.median(ours) * 1000,
        ("bare httpx.Client, GET /me + .json()", statistics.median(theirs) * 1000),
        ratio=ratio,
        target="<= 1.15",
        target_met=ratio <= 1.15,
        best_of_rounds_ratio=min(ours) / min(theirs),
        rounds=rounds,
        iterations_per_round=iterations,
    )
