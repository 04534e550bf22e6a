"""``python -m debitura_provider.sandbox`` / ``debitura-sandbox``: serve the sandbox until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from debitura_provider.sandbox import EXTRA
from debitura_provider.sandbox.config import (
    DEFAULT_API_KEY,
    DEFAULT_DELAY,
    DEFAULT_OUTCOMES,
    DEFAULT_PORT,
    DEFAULT_SEED,
    DEFAULT_SPEED,
    KINDS,
    OUTCOME_MIXES,
    FaultSpec,
    SandboxConfig,
)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default only where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False):
            return action.help or ""
        return super()._get_help_string(action) or ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="debitura-sandbox",
        description="A local Debitura Collection Partner API: managed cases, simulated collection partners, "
        "webhooks, rate limits. Serves on 127.0.0.1 with no path prefix.",
        formatter_class=_Help,
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on; 0 picks a free one")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the managing partner's API key")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed for ids and simulated outcomes; the same seed and requests repeat a run exactly",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help="how much faster than real time sandbox time runs; 86400 is one sandbox day per real second",
    )
    parser.add_argument("--state", metavar="FILE", help="keep state in this SQLite file so a restart loses nothing")
    parser.add_argument("--no-rate-limit", action="store_true", help="turn off the per-key rate limits")
    parser.add_argument(
        "--no-simulation",
        action="store_true",
        help="simulated collection partners do not work production cases (verification still happens)",
    )
    parser.add_argument(
        "--faults",
        metavar="SPEC",
        help="fail requests on purpose, deterministically for the "
        f"seed: comma-separated kind=probability, kinds {', '.join(KINDS)} "
        "(e.g. error=0.1,commit_then_timeout=0.05); /test/* and /portal are exempt",
    )
    parser.add_argument(
        "--fault-delay",
        type=float,
        default=DEFAULT_DELAY,
        metavar="SECONDS",
        help="how long a slow request waits and a commit_then_timeout one is held "
        "(make it longer than the client's timeout)",
    )
    parser.add_argument(
        "--strict-spec",
        metavar="PATH",
        help="check every request body and answer against this copy of Debitura's OpenAPI spec; a violation "
        "is logged and answered with a 418 (the tests run this way)",
    )
    parser.add_argument(
        "--managing-partner-events",
        choices=("on", "off"),
        default="on",
        help="whether the managing partner's live webhook subscriptions get events of the production cases it "
        "referred (no Debitura source says; off tests the path where none arrive)",
    )
    parser.add_argument(
        "--outcomes",
        choices=OUTCOME_MIXES,
        default=DEFAULT_OUTCOMES,
        help="the simulated partners' mix: varied makes declines, reassignments, merges, system closes, fees and "
        "payment corrections common",
    )
    return parser


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    # uvicorn handles SIGTERM gracefully, then re-raises it to the handler it found: exit with status 0.
    sys.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from debitura_provider.sandbox.server import SandboxServer
    except ImportError as exc:  # the [sandbox] extra (FastAPI, uvicorn) is not installed
        print(
            f"debitura-sandbox: {exc.name or exc} is not installed; the sandbox needs its extra: {EXTRA}",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = SandboxConfig(
            api_key=args.api_key,
            port=args.port,
            seed=args.seed,
            speed=args.speed,
            state_path=args.state,
            rate_limits=not args.no_rate_limit,
            simulate=not args.no_simulation,
            faults=FaultSpec.parse(args.faults, delay=args.fault_delay) if args.faults else None,
            strict_spec=args.strict_spec,
            managing_partner_events=args.managing_partner_events == "on",
            outcomes=args.outcomes,
        )
        server = SandboxServer(config)
    except (ValueError, OSError) as exc:
        print(f"debitura-sandbox: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_quietly)
    print(f"Debitura sandbox on {server.base_url}  (portal {server.portal_url})", flush=True)
    # A key of your own choosing stays out of the output (and so out of any log collecting it).
    shown = server.api_key if args.api_key == DEFAULT_API_KEY else "the one given with --api-key (not shown)"
    print(f"Managing partner API key: {shown}  (send it as the XApiKey header)", flush=True)
    if config.faults:
        print(f"Injecting faults: {config.faults} (seed {config.seed})", flush=True)
    for name, key in server.partner_keys.items():
        print(f"  collection partner {name}: {key}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn already shut down cleanly; Ctrl-C is not an error
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
