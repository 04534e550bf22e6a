"""``DebituraPortfolioTrigger`` on its own event loop against a real sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from debitura_provider.api.watch.scan import PAYMENT_EVENTS, ScanState
from debitura_provider.assets import DEBITURA_PAYMENTS
from debitura_provider.triggers import portfolio
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
                await first.wait_for(lambda: len(first.payment_ids()) == 1 and first.settled())
            during = await pay(server, ids[1:3])  # the "triggerer" is down
            async with Running(trigger(tmp_path), monkeypatch) as second:
                await second.wait_for(lambda: len(second.payment_ids()) >= 2)
                await asyncio.sleep(1.0)
            assert first.payment_ids() == seen_before
            assert sorted(second.payment_ids()) == sorted(during)

    asyncio.run(scenario())


def test_a_trigger_stopped_before_airflow_wrote_its_events_yields_them_again_once_with_the_same_ids(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Stopped inside the hand-over window (here: a window that never ends), nothing is lost: the
    restarted trigger yields the saved outbox once, then carries on from the advanced cursor."""
    real_sleep = asyncio.sleep
    monkeypatch.setattr(portfolio, "HANDOVER", 0.25)
    stopped_in_window = asyncio.Event()

    async def window_never_ends(seconds: float) -> None:
        if seconds == 0.25 and not stopped_in_window.is_set():
            await asyncio.Event().wait()  # the triggerer dies before the events count as written
        await real_sleep(seconds)

    monkeypatch.setattr(portfolio, "sleep", window_never_ends)

    async def scenario() -> None:
        with counted_sandbox(sandbox_factory, monkeypatch) as server:
            ids = await make_cases(server, 20, active=3)
            async with Running(trigger(tmp_path), monkeypatch) as first:
                handed = await pay(server, ids[:1])
                await first.wait_for(lambda: len(first.payment_ids()) == 1)
            assert not first.settled()
            stopped_in_window.set()
            during = await pay(server, ids[1:3])
            async with Running(trigger(tmp_path), monkeypatch) as second:
                await second.wait_for(lambda: len(second.payment_ids()) >= 3 and second.settled())
                await asyncio.sleep(1.0)
            assert first.payment_ids() == handed
            assert sorted(second.payment_ids()) == sorted(handed + during)
            again = [e["id"] for e in second.events if e["data"]["paymentId"] in handed]
            assert again == [e["id"] for e in first.events if e["type"] == "payment.created"]

    asyncio.run(scenario())


class _Accessor:
    """An asset state store accessor of Airflow 3.3, in memory; ``store[asset]`` answers it for the payments asset."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.writes = 0

    async def aget(self, key: str) -> object:
        return self.values.get(key)

    async def aset(self, key: str, value: object) -> None:
        self.writes += 1
        self.values[key] = json.loads(json.dumps(value))

    def __getitem__(self, asset: object) -> _Accessor:
        assert getattr(asset, "name", None) == DEBITURA_PAYMENTS.name
        return self


def test_on_airflow_3_3_the_cursor_and_the_outbox_go_to_the_asset_state_store_in_one_write() -> None:
    accessor = _Accessor()
    watcher = DebituraPortfolioTrigger(events=PAYMENT_EVENTS)
    watcher.asset_state_store = accessor  # type: ignore[assignment]
    envelope = {"id": "e1", "type": "payment.created", "createdAt": "2026-01-01T00:00:00Z", "data": {"caseId": "c"}}

    async def scenario() -> None:
        await watcher.save_state(ScanState(cursor="2026-01-01T00:00:00Z", started=True), [envelope])
        state, outbox = await watcher.load_state()
        assert (state.cursor, outbox, accessor.writes) == ("2026-01-01T00:00:00Z", [envelope], 1)
        assert list(accessor.values) == [portfolio.STATE_KEY]

    asyncio.run(scenario())
    assert not watcher.state_file.exists()
