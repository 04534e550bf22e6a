"""The client-side budget keeps one key inside every window, shared by all its clients."""

from __future__ import annotations

import math

import pytest

from debitura_provider.api.ratelimit import DEBITURA_LIMITS, UNLIMITED, RateBudget, RateLimits, budget_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_within_the_minute_limit_do_not_wait() -> None:
    budget = RateBudget(RateLimits(per_minute=5, per_hour=None, per_day=None), clock=FakeClock())
    assert [budget.reserve() for _ in range(5)] == [0.0] * 5


def test_the_next_request_waits_until_the_oldest_leaves_the_window() -> None:
    clock = FakeClock()
    budget = RateBudget(RateLimits(per_minute=3, per_hour=None, per_day=None), clock=clock)
    for _ in range(3):
        budget.reserve()
        clock.now += 1
    assert budget.reserve() == 60.0 - 3  # first was at 1000, now is 1003: due at 1060


def test_every_window_is_respected() -> None:
    clock = FakeClock()
    budget = RateBudget(RateLimits(per_minute=100, per_hour=4, per_day=None), clock=clock)
    waits = [budget.reserve() for _ in range(5)]
    assert waits[:4] == [0.0] * 4
    assert waits[4] == 3600.0


def test_reservations_never_go_backwards_under_pressure() -> None:
    clock = FakeClock()
    budget = RateBudget(RateLimits(per_minute=2, per_hour=None, per_day=None), clock=clock)
    waits = [budget.reserve() for _ in range(6)]
    assert waits == [0.0, 0.0, 60.0, 60.0, 120.0, 120.0]


def test_unlimited_never_waits() -> None:
    budget = RateBudget(UNLIMITED)
    assert all(budget.reserve() == 0.0 for _ in range(10_000))


def test_one_budget_per_key_and_url() -> None:
    a = budget_for("https://x.test/", "key-a", DEBITURA_LIMITS)
    assert budget_for("https://x.test", "key-a", DEBITURA_LIMITS) is a
    assert budget_for("https://x.test", "key-b", DEBITURA_LIMITS) is not a


def test_time_scale_compresses_every_window() -> None:
    clock = FakeClock()
    budget = RateBudget(RateLimits(per_minute=2, per_hour=3, per_day=None, time_scale=10), clock=clock)
    assert [budget.reserve() for _ in range(4)] == [0.0, 0.0, 6.0, 360.0]


def test_time_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        RateLimits(time_scale=0)


def test_hold_delays_every_later_reservation() -> None:
    clock = FakeClock()
    budget = RateBudget(RateLimits(per_minute=100, per_hour=None, per_day=None), clock=clock)
    budget.hold(7.5)
    assert budget.reserve() == 7.5
    clock.now += 10
    assert budget.reserve() == 0.0


def _minute(limit: int, processes: int = 16) -> RateLimits:
    return RateLimits(per_minute=limit, per_hour=None, per_day=None, processes=processes)


def test_a_process_alone_keeps_the_whole_key() -> None:
    clock = FakeClock()
    budget = RateBudget(_minute(100), clock=clock)
    for _ in range(100):
        budget.reserve()
    assert budget.share == 100


def test_a_429_shrinks_the_share_to_what_this_process_got_admitted() -> None:
    clock = FakeClock()
    budget = RateBudget(_minute(100), clock=clock)
    for _ in range(31):  # 30 admitted, then the 31st answered 429: the others had the other 70
        budget.reserve()
    budget.hold(50.0)
    assert budget.share == 30
    clock.now += 60  # the window has freed: this process takes its 30 again, not the whole 100
    assert [budget.reserve() for _ in range(30)] == [0.0] * 30


def test_the_share_never_drops_below_one_per_process() -> None:
    clock = FakeClock()
    budget = RateBudget(_minute(100, processes=4), clock=clock)
    budget.reserve()
    budget.hold(30.0)  # refused at once: this process had nothing admitted yet
    assert budget.share == 25


def test_a_share_that_holds_the_process_back_doubles_every_segment_from_then_on() -> None:
    clock = FakeClock()
    budget = RateBudget(_minute(100), clock=clock)
    for _ in range(21):
        budget.reserve()
    budget.hold(10.0)
    clock.now += 60
    assert [budget.reserve() for _ in range(20)] == [0.0] * 20
    # The share (20) holds it back now; from then on, until a 429, it doubles every segment (10 s),
    # so the 21st request goes out when the share reaches 21, not when the window frees (60 s).
    assert budget.reserve() == pytest.approx(10 * math.log2(21 / 20))
    assert budget.reserve() == pytest.approx(10 * math.log2(22 / 20))
    clock.now += 10
    assert budget.share == 40
    clock.now += 20
    assert budget.share == 100  # ... until it is the whole key again


def test_a_new_429_stops_the_growth_and_measures_the_share_again() -> None:
    clock = FakeClock()
    budget = RateBudget(_minute(100), clock=clock)
    for _ in range(21):
        budget.reserve()
    budget.hold(10.0)
    clock.now += 60
    for _ in range(21):
        budget.reserve()  # 20 now, the 21st probing as the share grows
    clock.now += 20
    budget.hold(40.0)  # the probe was refused: the others still use the key
    assert budget.share == 20


def test_a_wait_longer_than_a_minute_holds_without_shrinking_the_share() -> None:
    clock = FakeClock()
    budget = RateBudget(RateLimits(per_minute=100, per_hour=5, per_day=None), clock=clock)
    for _ in range(6):
        budget.reserve()
    budget.hold(1800.0)  # the hour window is full: waiting for it is the answer
    assert budget.share == 100
    assert budget.reserve() >= 1800.0


def test_processes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="processes"):
        RateLimits(processes=0)
