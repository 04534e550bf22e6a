"""A time-compressed sandbox limit: the windows pass ``time_scale`` times faster and ``retryAfter`` is real seconds."""

from __future__ import annotations

import pytest

from debitura_provider.api.ratelimit import RateBudget, RateLimits
from debitura_provider.sandbox import RateLimitSettings
from debitura_provider.sandbox.edge.ratelimit import RateLimiter
from tests.api.test_ratelimit import FakeClock


def clock_at(now: float) -> FakeClock:
    clock = FakeClock()
    clock.now = now
    return clock


def test_a_compressed_minute_lasts_sixty_over_the_scale_seconds() -> None:
    clock = clock_at(36_000.0)
    limiter = RateLimiter(RateLimitSettings(per_minute=2, per_hour=100, per_day=100, time_scale=10), clock)
    assert limiter.admit("k") is None
    assert limiter.admit("k") is None
    assert limiter.admit("k") == pytest.approx(6.0)
    clock.now += 6.0
    assert limiter.admit("k") is None


def test_the_client_budget_with_the_same_scale_is_never_refused() -> None:
    """What the compressed client budget hands out, the compressed sandbox admits."""
    clock = clock_at(36_000.0)
    settings = RateLimitSettings(per_minute=50, per_hour=120, per_day=1_000, time_scale=20)
    limiter = RateLimiter(settings, clock)
    budget = RateBudget(RateLimits(50, 120, 1_000, time_scale=20), clock=clock)
    for _ in range(300):
        clock.now += budget.reserve()
        assert limiter.admit("k") is None


def test_time_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        RateLimitSettings(time_scale=-1)
