"""8 OS processes, one API key, Debitura's real limits: the figures of docs/how-to/production.md.

    python -m scripts.distributed.rate_budget [--processes 8] [--records 6000] [--time-scale 1]

Starts a sandbox enforcing 2,000 requests a minute per key on the real clock (``--time-scale``
compresses it, for a quick look only), refers the records split over the processes, each through
its own ``DebituraClient`` with the default budget, and prints the figures as JSON and as a line.
Exits 1 unless: >= 0.9 of the key's ceiling, 0 failed records, no duplicate, <= 2% answered 429.
At the real limits it takes 2 to 3 minutes. Part of ``make test-distributed``; not of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bench import processes
from bench.server import SandboxProcess
from debitura_provider.api import RateLimits
from debitura_provider.sandbox import RateLimitSettings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.distributed.rate_budget", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--records", type=int, default=6_000)
    parser.add_argument("--threads", type=int, default=processes.THREADS)
    parser.add_argument(
        "--rate-limit-processes",
        type=int,
        default=RateLimits.processes,
        help="RateLimits.processes of every client (the connection's rate_limit_processes)",
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="compress the limits' clock (not for the figures)"
    )
    args = parser.parse_args(argv)
    limits = RateLimitSettings(time_scale=args.time_scale)
    print(
        f"[rate budget] {args.records} creates over {args.processes} processes, {limits.per_minute}/min "
        f"per key (time x{args.time_scale:g}) ...",
        flush=True,
    )
    with SandboxProcess(limits) as sandbox:
        result = processes.measure(
            sandbox,
            args.processes,
            args.records,
            threads=args.threads,
            rate_processes=args.rate_limit_processes,
            name="referral_8_processes_vs_rate_ceiling",
        )
    print(json.dumps(result, indent=2))
    print(
        f"[rate budget] {result['cases_created']} cases in {result['elapsed_seconds']:.1f} s (best "
        f"{result['best_seconds']:.0f} s): {result['ratio']:.2f} of the key's ceiling; failed "
        f"{result['failed_records']}, duplicated {result['duplicated_records']}; 429: "
        f"{result['rate_limited_responses']} of {result['requests']} requests ({result['rate_limited_share']:.2%})"
    )
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
