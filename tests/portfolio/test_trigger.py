"""``DebituraPortfolioTrigger`` on its own event loop against a real sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from debitura_provider.api.watch.scan import PAYMENT_EVENTS
from debitura_provider.triggers.portfolio import DebituraPortfolioTrigger
from tests.fixtures.sandbox import SandboxFactory
from tests.portfolio.sandbox_run import Running, counted_sandbox, list_requests, make_cases, pay, trigger


def test_kwargs_are_checked_and_serialize_round_trips(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="events"):
        DebituraPortfolioTrigger(events=["payment.updated"])
    with pytest.raises(ValueError, match="start"):
        DebituraPortfolioTrigger(start="yesterday")
    with pytest.raises(ValueError, match="poll_interval"):
        DebituraPortfolioTrigger(poll_interval=0)
    original = trigger(tmp_path, events=list(PAYMENT_EVENTS))
    path, kwargs = original.serialize()
    assert path == "debitura_provider.triggers.portfolio.DebituraPortfolioTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert DebituraPortfolioTrigger(**kwargs).serialize() == (path, kwargs)


def test_one_event_per_payment_for_1000_cases_at_two_list_requests_a_cycle_at_most(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The issue's done-when: 1,000 cases, fewer than 100 changing, each payment emitted exactly once."""

    async def scenario() -> None:
        with counted_sandbox(sandbox_factory, monkeypatch) as server:
            ids = await make_cases(server, 1000, active=90)
            await asyncio.sleep(2.2)  # the burst of 1,000 creations falls out of the overlap
            paid: list[str] = []
            async with Running(trigger(tmp_path, overlap=2.0), monkeypatch) as running:
                before, cycles_before = list_requests(server), running.cycles
                for round_ in range(3):  # 30 cases a round, some paid twice: under 100 change per cycle
                    chosen = ids[round_ * 30 : round_ * 30 + 30] if round_ < 2 else ids[15:45]
                    paid += await pay(server, chosen)
                    await asyncio.sleep(0.4)
                await running.wait_for(lambda: len(running.payment_ids()) >= len(paid))
                await asyncio.sleep(1.0)  # a few quiet cycles: nothing more may come
                cycles = running.cycles - cycles_before
                requests = list_requests(server) - before
            assert sorted(running.payment_ids()) == sorted(paid)
            assert len(set(e["id"] for e in running.events)) == len(running.events)
            assert cycles >= 3 and requests <= 2 * cycles, (requests, cycles)
            body = json.dumps(running.events)
            assert "Pacific Trading" not in body and "accounts@" not in body

    asyncio.run(scenario())


def test_a_payment_made_while_the_trigger_is_stopped_is_emitted_once_after(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def scenario() -> None:
        with counted_sandbox(sandbox_factory, monkeypatch) as server:
            ids = await make_cases(server, 20, active=3)
            async with Running(trigger(tmp_path), monkeypatch) as first:
                seen_before = await pay(server, ids[:1])
                await first.wait_for(lambda: len(first.payment_ids()) == 1)
            during = await pay(server, ids[1:3])  # the "triggerer" is down
            async with Running(trigger(tmp_path), monkeypatch) as second:
                await second.wait_for(lambda: len(second.payment_ids()) >= 2)
                await asyncio.sleep(1.0)
            assert first.payment_ids() == seen_before
            assert sorted(second.payment_ids()) == sorted(during)

    asyncio.run(scenario())
