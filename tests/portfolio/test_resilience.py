"""Each payment emitted once after a sandbox restart from its state file and after a five-minute outage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from debitura_provider.sandbox import SandboxServer
from debitura_provider.triggers import portfolio
from tests.fixtures.sandbox import SandboxFactory, test_config
from tests.portfolio.sandbox_run import Running, connect, make_cases, pay, trigger

pytestmark = pytest.mark.resilience


def test_payments_around_a_sandbox_restart_from_state_are_emitted_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state = tmp_path / "sandbox.db"

    async def scenario() -> None:
        first = SandboxServer(test_config(state_path=state, simulate=False)).start()
        try:
            connect(first, monkeypatch)
            port = first.port
            ids = await make_cases(first, 20, active=4)
            running = Running(trigger(tmp_path), monkeypatch)
            async with running:
                before = await pay(first, ids[:1])  # maybe seen before the stop, maybe after: once either way
                first.stop()
                await asyncio.sleep(1.0)  # the trigger's cycles fail meanwhile
                second = SandboxServer(test_config(state_path=state, simulate=False, port=port)).start()
                try:
                    after = await pay(second, ids[1:3])
                    await running.wait_for(lambda: len(running.payment_ids()) >= 3)
                    await asyncio.sleep(1.0)
                finally:
                    second.stop()
        finally:
            first.stop()
        assert sorted(running.payment_ids()) == sorted(before + after)

    asyncio.run(scenario())


class Outage:
    """An edge middleware answering 503 to every read while ``down``: Debitura unreachable for the
    trigger, while payments (POSTs) still happen at Debitura."""

    down = False

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and Outage.down:
            await send(
                {"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": b'{"error":"ServiceUnavailable","message":"down"}'})
            return
        await self.app(scope, receive, send)


def test_payments_during_a_five_minute_outage_are_emitted_once_after_it(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Time is compressed 100 times: the trigger's waits are recorded at full length and slept briefly."""
    waited: list[float] = []
    real_sleep = asyncio.sleep

    async def compressed(seconds: float) -> None:
        waited.append(seconds)
        await real_sleep(seconds / 100)

    monkeypatch.setattr(portfolio, "sleep", compressed)
    Outage.down = False

    async def scenario() -> None:
        with sandbox_factory(simulate=False, edge_middleware=(Outage,)) as server:
            connect(server, monkeypatch)
            ids = await make_cases(server, 20, active=3)
            running = Running(trigger(tmp_path, poll_interval=60.0), monkeypatch)
            async with running:
                Outage.down = True
                waited.clear()
                paid = await pay(server, ids[:3])
                while sum(waited) < 300:  # five minutes of the trigger's time without an answer
                    await real_sleep(0.05)
                assert running.payment_ids() == []
                Outage.down = False
                await running.wait_for(lambda: len(running.payment_ids()) >= 3, timeout=30)
                await real_sleep(0.5)
        assert sorted(running.payment_ids()) == sorted(paid)
        assert max(waited) <= portfolio.MAX_BACKOFF

    try:
        asyncio.run(scenario())
    finally:
        Outage.down = False
