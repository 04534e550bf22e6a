"""The sandbox as ``make bench`` runs it: its own process on 127.0.0.1, counting what it is asked.

A separate process, so the sandbox's CPU never competes with the code being measured for one GIL.
Requests are counted at the sandbox's edge (the ``edge_middleware`` seam), by route and by status,
so the figures say what reached "Debitura", not what the client believes it sent.
``GET /_bench/counts`` is answered by the counter itself: never counted, never rate limited.

    python -m bench.server [--rate-limit-scale S] [--per-minute N]  # one JSON line, then serves until SIGTERM
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debitura_provider.sandbox import RateLimitSettings, SandboxConfig, SandboxServer

COUNTS_PATH = "/_bench/counts"
REPO = Path(__file__).resolve().parent.parent
_ID = re.compile(r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def route_of(method: str, path: str) -> str:
    """``GET /managed-cases/{id}/payments`` for any case id: one counter per operation."""
    return f"{method} {_ID.sub('/{id}', path)}"


class RequestCounter:
    """ASGI middleware counting requests by route and responses by status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == COUNTS_PATH:
            await JSONResponse({"routes": self.routes, "statuses": self.statuses})(scope, receive, send)
            return
        self.routes[route_of(scope["method"], scope["path"])] += 1

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses[str(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


@dataclass(frozen=True)
class Counts:
    """A snapshot of the counters; subtract two to get what happened in between."""

    routes: Counter[str]
    statuses: Counter[str]

    def __sub__(self, earlier: Counts) -> Counts:
        return Counts(self.routes - earlier.routes, self.statuses - earlier.statuses)

    def matching(self, prefix: str) -> int:
        """Requests whose route starts with ``prefix`` (e.g. ``"GET /managed-cases/{id}"``)."""
        return sum(n for route, n in self.routes.items() if route.startswith(prefix))


class SandboxProcess:
    """``with SandboxProcess(limits) as sandbox:`` starts ``bench.server`` and stops it on exit or Ctrl-C.

    ``limits`` None serves without rate limits.
    """

    def __init__(self, limits: RateLimitSettings | None = None) -> None:
        self.limits = limits
        self.base_url = ""
        self.api_key = ""
        self.pid = 0
        self._process: subprocess.Popen[str] | None = None

    def settings(self) -> dict[str, Any]:
        """How this sandbox was set up, for the results file."""
        return {
            "rate_limits": asdict(self.limits) if self.limits else None,
            "simulated_partners": False,
            "process": "its own process, uvicorn on 127.0.0.1",
        }

    def __enter__(self) -> SandboxProcess:
        command = [sys.executable, "-m", "bench.server"]
        if self.limits is not None:
            command += ["--rate-limit-scale", str(self.limits.time_scale), "--per-minute", str(self.limits.per_minute)]
        self._process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the bench sandbox did not start; see its output above")
        started = json.loads(line)
        self.base_url, self.api_key, self.pid = started["base_url"], started["api_key"], self._process.pid
        return self

    def counts(self) -> Counts:
        body = httpx.get(self.base_url + COUNTS_PATH, timeout=30).json()
        return Counts(Counter(body["routes"]), Counter(body["statuses"]))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--rate-limit-scale", type=float, help="enforce Debitura's limits, this many times faster")
    parser.add_argument("--per-minute", type=int, default=RateLimitSettings.per_minute)
    args = parser.parse_args(argv)
    scale = args.rate_limit_scale
    config = SandboxConfig(
        port=0,
        rate_limits=scale is not None,
        limits=RateLimitSettings(per_minute=args.per_minute, time_scale=scale or 1.0),
        simulate=False,  # the benchmark's cases are test cases; nothing should change them but the benchmark
        edge_middleware=(RequestCounter,),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with SandboxServer(config) as server:
        print(json.dumps({"base_url": server.base_url, "api_key": server.api_key}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
