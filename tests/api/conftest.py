"""Unit tests of the client: httpx is mocked with respx, and sleeps are recorded instead of slept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from debitura_provider.api import UNLIMITED, AsyncDebituraClient, DebituraClient, RetryPolicy

BASE = "https://api.test.invalid"
KEY = "unit-test-key-5f2c9a"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep the retry loop asks for (sync and async), without waiting."""
    recorded: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr("debitura_provider.api.client.time.sleep", recorded.append)
    monkeypatch.setattr("debitura_provider.api.client.asyncio.sleep", fake_async_sleep)
    return recorded


@pytest.fixture
def client(sleeps: list[float]) -> Iterator[DebituraClient]:
    with DebituraClient(KEY, BASE, retry=RetryPolicy(attempts=4), rate_limits=UNLIMITED) as c:
        yield c


@pytest.fixture
async def aclient(sleeps: list[float]) -> AsyncDebituraClient:
    c = AsyncDebituraClient(KEY, BASE, retry=RetryPolicy(attempts=4), rate_limits=UNLIMITED)
    yield c
    await c.aclose()
