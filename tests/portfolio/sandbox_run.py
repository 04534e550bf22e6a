"""Helpers for the trigger against a real sandbox: a counted sandbox, its cases, the trigger on a loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.server import COUNTS_PATH, RequestCounter
from debitura_provider.api import UNLIMITED, AsyncDebituraClient
from debitura_provider.sandbox import SandboxServer
from debitura_provider.triggers import portfolio
from debitura_provider.triggers.portfolio import DebituraPortfolioTrigger
from tests.api.samples import create_request
from tests.fixtures.sandbox import SandboxFactory

CONN_ID = "debitura_portfolio_test"


@contextmanager
def counted_sandbox(
    factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> Iterator[SandboxServer]:
    """A sandbox of its own (nothing simulated, requests counted at its edge) and the connection to it."""
    settings: dict[str, Any] = {"simulate": False, "edge_middleware": (RequestCounter,), **overrides}
    with factory(**settings) as server:
        connect(server, monkeypatch)
        yield server


def connect(server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "debitura",
        "host": server.base_url,
        "password": server.api_key,
        "extra": {"rate_limit_per_minute": 0, "max_attempts": 1},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))


def list_requests(server: SandboxServer) -> int:
    routes = httpx.get(server.base_url + COUNTS_PATH, timeout=30).json()["routes"]
    return int(routes.get("GET /managed-cases", 0))


def client(server: SandboxServer) -> AsyncDebituraClient:
    return AsyncDebituraClient(server.api_key, server.base_url, rate_limits=UNLIMITED)


async def make_cases(server: SandboxServer, n: int, *, active: int = 0, concurrency: int = 16) -> list[str]:
    """``n`` test cases; the first ``active`` advanced to Active (test cases take payments once Active)."""
    ids: list[str] = [""] * n
    gate = asyncio.Semaphore(concurrency)
    async with client(server) as c:

        async def one(i: int) -> None:
            async with gate:
                case = await c.create_managed_case(create_request(creditorReference=f"PF-{i:05d}", tag="portfolio"))
                ids[i] = str(case.id)
                if i < active:
                    await c.advance_test_case(ids[i], {"to": "Active"})

        await asyncio.gather(*(one(i) for i in range(n)))
    return ids


async def pay(server: SandboxServer, case_ids: list[str], amount: str = "10.00") -> list[str]:
    async with client(server) as c:
        paid = [
            await c.record_test_payment(cid, {"date": date.today().isoformat(), "paymentAmount": amount})
            for cid in case_ids
        ]
    return [str(p.payment_id) for p in paid]


class Running:
    """The trigger's ``run()`` consumed on the current loop; events collected, cycles counted."""

    def __init__(self, trigger: DebituraPortfolioTrigger, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.cycles = 0
        real = portfolio.run_async

        async def counted(send: Any, steps: Any) -> Any:
            result = await real(send, steps)
            self.cycles += 1
            return result

        monkeypatch.setattr(portfolio, "run_async", counted)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        async def consume() -> None:
            async for event in self.trigger.run():
                self.events.append(event.payload)

        self._task = asyncio.get_running_loop().create_task(consume())
        await self.wait_for(lambda: self.trigger.state_file.is_file() or self.cycles > 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def wait_for(self, done: Any, timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            if self._task is not None and self._task.done():
                self._task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; {len(self.events)} event(s) so far")
            await asyncio.sleep(0.05)

    def settled(self) -> bool:
        """Whether the saved outbox is empty: every event yielded counts as written by Airflow."""
        path = self.trigger.state_file
        return path.is_file() and not json.loads(path.read_text()).get("outbox")

    def payment_ids(self, kind: str = "payment.created") -> list[str]:
        return [e["data"]["paymentId"] for e in self.events if e["type"] == kind]


def trigger(tmp_path: Path, **kwargs: Any) -> DebituraPortfolioTrigger:
    settings: dict[str, Any] = {
        "debitura_conn_id": CONN_ID,
        "poll_interval": 0.3,
        "state_path": str(tmp_path / "cursor.json"),
        **kwargs,
    }
    return DebituraPortfolioTrigger(**settings)
