"""Unit tests of the client: httpx is mocked with respx, and sleeps are recorded instead of slept."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from debitura_provider.api import UNLIMITED, AsyncDebituraClient, DebituraClient, RetryPolicy

BASE = "https://api.test.invalid"
KEY = "unit-test-key-5f2c9a"


@pytest.fixture(autouse=True)
def fresh_rate_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Budgets are per key and process; a 429 in one test must not hold the next test's requests."""
    monkeypatch.setattr("debitura_provider.api.ratelimit._BUDGETS", {})


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep the retry loop asks for (sync and async), without waiting."""
    recorded: list[float] = []
    test_thread = threading.current_thread()
    real_sleep, real_async_sleep = time.sleep, asyncio.sleep

    # time.sleep and asyncio.sleep are patched process-wide: other threads (a sandbox server still
    # running for later tests) keep sleeping for real and are not recorded.
    def fake_sleep(seconds: float) -> None:
        if threading.current_thread() is test_thread:
            recorded.append(seconds)
        else:
            real_sleep(seconds)

    async def fake_async_sleep(seconds: float) -> None:
        if threading.current_thread() is test_thread:
            recorded.append(seconds)
        else:
            await real_async_sleep(seconds)

    monkeypatch.setattr("debitura_provider.api.client.time.sleep", fake_sleep)
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
