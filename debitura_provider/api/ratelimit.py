"""A client-side rate budget, so that 429s are the exception rather than the way limits are found.

Debitura allows 2,000 requests a minute, 20,000 an hour and 100,000 a day per API key
(API-NOTES §1.4). One :class:`RateBudget` per key and process is shared by every sync and async
client using that key: each request reserves a slot in all windows and waits until it is due.

The key's limits are shared with every other process using the key (Airflow workers, triggerers),
which this budget cannot see. It adapts instead, in the manner of the AWS SDKs' adaptive retry
mode, with what Debitura's 429 tells: the key's minute window is full, so the requests this process
got admitted in that window are its share while the others stay busy. The budget shrinks its minute
window to that share (never below ``1 / processes`` of the key) and holds every request for the
``retryAfter``. Once the share is what holds the process back, it grows at once and doubles every
segment (10 s), like a TCP slow start, until a 429 measures it again or it is the whole key: while
the others still fill the key that costs one refused probe per window (its ``retryAfter`` then
holds the process until the window frees), and when they have finished, the key is not left idle
for a segment's wait at the end of a batch. A process alone with its key never sees a 429 and
keeps the whole budget.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

SEGMENTS = 6
"""Debitura's minute window is six 10-second segments; a shrunk share is re-judged each segment."""
GROWTH = 2.0
"""How much a shrunk share that holds this process back grows each segment without a 429, up to the whole key."""


@dataclass(frozen=True)
class RateLimits:
    """Requests allowed per window; ``None`` turns a window off.

    ``time_scale`` shortens every window by that factor (a minute lasts ``60 / time_scale`` s), to
    match a sandbox whose limits run on a compressed clock, as ``make bench`` does.
    ``processes`` is how many processes may use the key at once (Debitura pool slots plus
    triggerers): a process that finds the key busy keeps at least ``1 / processes`` of the minute limit.
    """

    per_minute: int | None = 2_000
    per_hour: int | None = 20_000
    per_day: int | None = 100_000
    time_scale: float = 1.0
    processes: int = 16

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be greater than zero")
        if self.processes < 1:
            raise ValueError("processes must be at least 1")

    def windows(self) -> list[tuple[int, float]]:
        spans = ((self.per_minute, 60.0), (self.per_hour, 3_600.0), (self.per_day, 86_400.0))
        return [(limit, span / self.time_scale) for limit, span in spans if limit is not None]


DEBITURA_LIMITS = RateLimits()
UNLIMITED = RateLimits(None, None, None)


class _Window:
    """A sliding window over reserved send times (sliding is never looser than Debitura's windows).

    ``share`` is how many of the key's ``limit`` this process may use now; it is the whole limit
    until :meth:`throttled` learns that other processes use the key too. From the moment the share
    holds this process back, and until the next 429, it grows continuously by ``GROWTH`` a segment
    (a sixth of the window, Debitura's 10 s): the others may have finished, and their part of the
    key would otherwise go unused.
    """

    def __init__(self, limit: int, span: float, floor: int) -> None:
        self.limit = limit
        self.span = span
        self.segment = span / SEGMENTS
        self.floor = max(1, min(floor, limit))
        self.share = float(limit)
        self.throttled_at: float | None = None
        self.held_since: float | None = None
        self._times: deque[float] = deque()

    def allowed(self, at: float) -> int:
        """The share at ``at`` (pure: ``at`` may be in the future)."""
        if self.throttled_at is None:
            return self.limit
        if self.held_since is None:
            return int(self.share)
        held = max(0.0, at - max(self.throttled_at, self.held_since)) / self.segment
        return min(self.limit, int(self.share * GROWTH**held + 1e-9))

    def _grown_to(self, count: int) -> float:
        """When the held-back share reaches ``count`` (the inverse of :meth:`allowed`)."""
        assert self.throttled_at is not None and self.held_since is not None
        start = max(self.throttled_at, self.held_since)
        return start + self.segment * max(0.0, math.log(count / self.share, GROWTH))

    def earliest(self, at: float) -> float:
        while self._times and self._times[0] <= at - self.span:
            self._times.popleft()
        allowed = self.allowed(at)
        if len(self._times) < allowed:
            return at
        due = self._times[-allowed] + self.span
        if allowed >= self.limit:
            return due
        if self.held_since is None:
            self.held_since = at  # the share, not the key, holds this process back from now on
        # The share grows meanwhile: it lets one more request through once it exceeds what is in the
        # window now (by then the window holds no more than now).
        return max(at, min(due, self._grown_to(len(self._times) + 1)))

    def take(self, at: float) -> None:
        self._times.append(at)

    def throttled(self, now: float) -> None:
        """The key's window is full: drop the refused request, keep what was admitted as the share."""
        sent = bisect.bisect_right(self._times, now)  # slots reserved for later are not sent yet
        if sent:
            del self._times[sent - 1]  # refused, so it does not count against the key
        admitted = sum(1 for t in self._times if now - self.span < t <= now)
        self.share = float(max(self.floor, min(admitted, self.allowed(now))))
        self.throttled_at, self.held_since = now, None


class RateBudget:
    """Hands out send times that keep one API key inside every window, and adapts to other processes."""

    def __init__(self, limits: RateLimits = DEBITURA_LIMITS, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        windows = limits.windows()
        self._windows = [_Window(limit, span, math.ceil(limit / limits.processes)) for limit, span in windows]
        self._lock = threading.Lock()
        self._last = 0.0

    def reserve(self) -> float:
        """Reserve the next slot; returns how many seconds to wait before sending."""
        if not self._windows:
            return 0.0
        with self._lock:
            now = self._clock()
            at = max(now, self._last)
            for _ in range(len(self._windows) + 1):
                due = max(w.earliest(at) for w in self._windows)
                if due <= at:
                    break
                at = due
            for window in self._windows:
                window.take(at)
            self._last = at
            return at - now

    def hold(self, seconds: float) -> None:
        """Debitura answered 429 with this ``retryAfter``: hand out no slot for ``seconds``, take the share.

        The key's limit is shared with other processes this budget cannot see; waiting here turns a
        burst of 429s into one pause instead of one refusal per request in flight, and the smaller
        share keeps this process from refilling the key's window the moment it frees. A wait longer
        than the minute window comes from the hour or day window, which the pause alone answers.
        """
        with self._lock:
            now = self._clock()
            self._last = max(self._last, now + seconds)
            minute = self._windows[0] if self._windows and self.limits.per_minute is not None else None
            if minute is not None and seconds <= minute.span:
                minute.throttled(now)

    @property
    def share(self) -> int | None:
        """Requests a minute this process allows itself now (``None`` without a minute limit)."""
        if not self._windows or self.limits.per_minute is None:
            return None
        with self._lock:
            return self._windows[0].allowed(self._clock())


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
