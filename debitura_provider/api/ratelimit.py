"""A client-side rate budget, so that 429s are the exception rather than the way limits are found.

Debitura allows 2,000 requests a minute, 20,000 an hour and 100,000 a day per API key
(API-NOTES §1.4). One :class:`RateBudget` per key and process is shared by every sync and async
client using that key: each request reserves a slot in all windows and waits until it is due.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimits:
    """Requests allowed per window; ``None`` turns a window off.

    ``time_scale`` shortens every window by that factor (a minute lasts ``60 / time_scale`` s), to
    match a sandbox whose limits run on a compressed clock, as ``make bench`` does.
    """

    per_minute: int | None = 2_000
    per_hour: int | None = 20_000
    per_day: int | None = 100_000
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be greater than zero")

    def windows(self) -> list[tuple[int, float]]:
        spans = ((self.per_minute, 60.0), (self.per_hour, 3_600.0), (self.per_day, 86_400.0))
        return [(limit, span / self.time_scale) for limit, span in spans if limit is not None]


DEBITURA_LIMITS = RateLimits()
UNLIMITED = RateLimits(None, None, None)


class _Window:
    """A sliding window over reserved send times (sliding is never looser than Debitura's windows)."""

    def __init__(self, limit: int, span: float) -> None:
        self.limit = limit
        self.span = span
        self._times: deque[float] = deque()

    def earliest(self, at: float) -> float:
        while self._times and self._times[0] <= at - self.span:
            self._times.popleft()
        if len(self._times) < self.limit:
            return at
        return self._times[-self.limit] + self.span

    def take(self, at: float) -> None:
        self._times.append(at)


class RateBudget:
    """Hands out send times that keep one API key inside every window."""

    def __init__(self, limits: RateLimits = DEBITURA_LIMITS, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._windows = [_Window(limit, span) for limit, span in limits.windows()]
        self._lock = threading.Lock()
        self._last = 0.0

    def reserve(self) -> float:
        """Reserve the next slot; returns how many seconds to wait before sending."""
        if not self._windows:
            return 0.0
        with self._lock:
            now = self._clock()
            at = max(now, self._last)
            for _ in range(len(self._windows)):
                due = max(w.earliest(at) for w in self._windows)
                if due <= at:
                    break
                at = due
            for window in self._windows:
                window.take(at)
            self._last = at
            return at - now

    def hold(self, seconds: float) -> None:
        """Hand out no slot for ``seconds`` (Debitura answered 429 with this ``retryAfter``).

        The key's limit may be shared with other processes this budget cannot see; waiting here
        turns a burst of 429s into one pause instead of one refusal per request in flight.
        """
        with self._lock:
            self._last = max(self._last, self._clock() + seconds)


_BUDGETS: dict[tuple[str, str, RateLimits], RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(base_url: str, api_key: str, limits: RateLimits) -> RateBudget:
    """The process-wide budget of one key at one base URL (the key itself is only kept hashed)."""
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()
    key = (base_url.rstrip("/"), fingerprint, limits)
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            budget = _BUDGETS[key] = RateBudget(limits)
        return budget
