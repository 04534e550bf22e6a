"""Debitura's rate limits per API key (API-NOTES §1.4), as an ASGI middleware.

* per minute: a sliding window of six 10-second segments;
* per hour: a fixed window from the start of the UTC hour;
* per day: a fixed 24-hour window from the partition's first request (the newer docs' wording).

Requests without a valid key (none, or one no partner owns) share one fallback partition, so guessing
keys buys no extra budget. A refused request answers 429 with
the documented body and ``retryAfter`` in seconds, and no ``Retry-After`` header (the newer docs).
Limits run on the real clock whatever the sandbox speed: they protect the caller's real request rate.
Only ``RateLimitSettings.time_scale`` compresses them (for benchmarks); ``retryAfter`` is then in real seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from debitura_provider.sandbox.config import RateLimitSettings

SEGMENT_SECONDS = 10
SEGMENTS = 6
MESSAGE = "Too many requests. Please try again later or contact support if you need higher limits."
EXEMPT_PREFIX = "/portal"


@dataclass
class _Partition:
    segments: dict[int, int] = field(default_factory=dict)
    hour: int = -1
    hour_count: int = 0
    day_start: float | None = None
    day_count: int = 0


class RateLimiter:
    """Counts requests per key; ``admit`` answers None (go ahead) or the seconds to wait."""

    def __init__(self, limits: RateLimitSettings, now: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self._now = now
        self._partitions: dict[str, _Partition] = {}

    def admit(self, key: str) -> float | None:
        scale = self.limits.time_scale
        now = self._now() * scale
        part = self._partitions.setdefault(key, _Partition())
        segment = int(now // SEGMENT_SECONDS)
        for old in [s for s in part.segments if s <= segment - SEGMENTS]:
            del part.segments[old]
        hour = int(now // 3600)
        if hour != part.hour:
            part.hour, part.hour_count = hour, 0
        if part.day_start is None or now - part.day_start >= 86400:
            part.day_start, part.day_count = now, 0
        waits = []
        if sum(part.segments.values()) >= self.limits.per_minute:
            waits.append((min(part.segments) + SEGMENTS) * SEGMENT_SECONDS - now)
        if part.hour_count >= self.limits.per_hour:
            waits.append((hour + 1) * 3600 - now)
        if part.day_count >= self.limits.per_day:
            waits.append(part.day_start + 86400 - now)
        if waits:
            return max(waits) / scale
        part.segments[segment] = part.segments.get(segment, 0) + 1
        part.hour_count += 1
        part.day_count += 1
        return None


FALLBACK = ""
"""The one partition every request without a valid key shares (API-NOTES §1.4)."""


class RateLimitMiddleware:
    """Counts each valid key in its own partition, and every request without one in :data:`FALLBACK`."""

    def __init__(self, app: ASGIApp, limits: RateLimitSettings, is_key: Callable[[str], bool]) -> None:
        self.app = app
        self.limiter = RateLimiter(limits)
        self._is_key = is_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIX):
            await self.app(scope, receive, send)
            return
        key = Headers(scope=scope).get("xapikey") or FALLBACK
        wait = self.limiter.admit(key if self._is_key(key) else FALLBACK)
        if wait is None:
            await self.app(scope, receive, send)
            return
        body = {"error": "rate_limit_exceeded", "message": MESSAGE, "retryAfter": math.ceil(wait * 10) / 10}
        await JSONResponse(body, status_code=429)(scope, receive, send)
