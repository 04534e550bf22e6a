"""The shared poller watching a large set through the scan, against a real sandbox."""

from __future__ import annotations

import asyncio

import pytest

from debitura_provider.api.watch import CaseWatch, SharedCasePoller, WatchSpec, run_async
from debitura_provider.api.watch.scan import SCAN_THRESHOLD
from tests.fixtures.sandbox import SandboxFactory
from tests.portfolio.sandbox_run import client, counted_sandbox, list_requests, make_cases, pay


def test_a_large_watched_set_costs_about_one_list_request_a_cycle(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = SCAN_THRESHOLD + 100

    async def scenario() -> None:
        with counted_sandbox(sandbox_factory, monkeypatch) as server:
            ids = await make_cases(server, n, active=2)

            async def opener():  # type: ignore[no-untyped-def]
                return client(server)

            poller = SharedCasePoller(opener)
            watch = CaseWatch(ids, WatchSpec.build("new_payment"))
            async with poller.subscribe(ids, interval=0.2) as sub:
                start = list_requests(server)
                assert await run_async(poller.fetch, watch.cycle(await sub.next())) is None
                first = list_requests(server) - start
                await asyncio.sleep(5.5)  # past the overlap: a cycle re-read the burst late enough, then settled
                await sub.next()
                mark, before = list_requests(server), poller.cycles
                for _ in range(50):  # at least three of the poller's cycles, however the machine's load spaces them
                    assert await run_async(poller.fetch, watch.cycle(await sub.next())) is None
                    if poller.cycles - before >= 3:
                        break
                quiet, cycles = list_requests(server) - mark, poller.cycles - before
                paid = await pay(server, [ids[1]])
                for _ in range(20):
                    await run_async(poller.fetch, watch.cycle(await sub.next()))
                    if watch.satisfied_ids:
                        break
            assert first <= 1 + -(-n // 100)  # the scan's baseline, then the cases it did not show, by Ids
            assert cycles >= 3 and quiet <= cycles + 1  # one request a cycle (+ one in flight)
            assert watch.satisfied_ids == [ids[1]]
            assert [p["id"] for p in watch.state.satisfied[ids[1]]] == paid

    asyncio.run(scenario())
