"""Time and chance, both under control: a speed-scaled clock and seeded randomness.

Everything the sandbox writes into its data (case, payment, timeline, payout, webhook log dates) is
*sandbox time*, so that a case paid after nine sandbox days shows nine days between its dates whatever
the speed. Only what a party checks against its own clock stays real: webhook signature timestamps,
signed-URL expiry, rate-limit windows and ``Idempotency-Key`` retention.
Every random choice derives from the seed and a stable name, so a run with the same seed and the same
requests produces the same ids, secrets and outcomes.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import string
import time
from collections.abc import Callable, Hashable
from datetime import date, datetime, timedelta, timezone
from datetime import time as daytime
from uuid import UUID

DAY = 86400.0
HOUR = 3600.0

_REFERENCE_ALPHABET = string.ascii_uppercase + string.digits


class Clock:
    """*Sandbox time*, running ``speed`` times faster than real time, for the data and for everything that waits.

    Sandbox time is a number of seconds since the epoch that starts at the real time and continues from
    where it stopped when a ``--state`` sandbox restarts, whatever the new speed: what was due in two
    sandbox hours is still due two sandbox hours later. It runs on the monotonic clock, so it never goes
    back, and :meth:`now` never gives the same instant twice.
    """

    def __init__(self, speed: float, sandbox_time: float | None = None) -> None:
        self.speed = speed
        self._real_anchor = time.monotonic()
        self._sandbox_anchor = time.time() if sandbox_time is None else sandbox_time
        self._last = datetime.min.replace(tzinfo=timezone.utc)

    def now(self) -> datetime:
        """The sandbox's current instant, strictly later than the one it gave before (ties cannot happen)."""
        current = datetime.fromtimestamp(self.sandbox_time(), timezone.utc)
        if current <= self._last:
            current = self._last + timedelta(microseconds=1)
        self._last = current
        return current

    @staticmethod
    def real_now() -> datetime:
        """Real UTC time, for what others check against their own clock."""
        return datetime.now(timezone.utc)

    @staticmethod
    def epoch() -> float:
        """Real seconds since the epoch (webhook signatures, idempotency retention)."""
        return time.time()

    def sandbox_time(self) -> float:
        return self._sandbox_anchor + (time.monotonic() - self._real_anchor) * self.speed

    def due(self, sandbox_seconds: float) -> float:
        """The sandbox time ``sandbox_seconds`` from now."""
        return self.sandbox_time() + sandbox_seconds

    def real_delay(self, due: float) -> float:
        """Real seconds until the sandbox time ``due``."""
        return max(0.0, (due - self.sandbox_time()) / self.speed)


def midnight(day: date) -> datetime:
    """A date as the UTC timestamp the API's date-time fields carry."""
    return datetime.combine(day, daytime(), tzinfo=timezone.utc)


def rng(seed: int, *names: object) -> random.Random:
    """A random generator fixed by the seed and a name (e.g. a case id), independent of call order."""
    material = ":".join([str(seed), *map(str, names)])
    return random.Random(hashlib.sha256(material.encode()).digest())


class IdSource:
    """Deterministic uuids, references and secrets: the n-th one of a seed is always the same."""

    def __init__(self, seed: int, counter: int = 0) -> None:
        self.seed = seed
        self.counter = counter

    def _digest(self, kind: str) -> bytes:
        self.counter += 1
        return hashlib.sha256(f"{self.seed}:{kind}:{self.counter}".encode()).digest()

    def uuid(self) -> UUID:
        return UUID(bytes=self._digest("uuid")[:16], version=4)

    def reference(self) -> str:
        digest = self._digest("reference")
        return "".join(_REFERENCE_ALPHABET[b % len(_REFERENCE_ALPHABET)] for b in digest[:8])

    def secret(self) -> bytes:
        return self._digest("secret")

    def derived(self, parent: UUID, n: int) -> UUID:
        """The n-th id below a parent (a case's payments, chats, events): independent of what runs meanwhile."""
        return UUID(bytes=hashlib.sha256(f"{self.seed}:{parent}:{n}".encode()).digest()[:16], version=4)


class Timers:
    """Named one-shot timers on the running loop: rescheduling a name replaces its timer."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._handles: dict[Hashable, asyncio.TimerHandle] = {}

    def at(self, name: Hashable, due: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` at sandbox time ``due``."""
        self.cancel(name)

        def fire() -> None:
            self._handles.pop(name, None)
            callback()

        self._handles[name] = asyncio.get_running_loop().call_later(self._clock.real_delay(due), fire)

    def cancel(self, name: Hashable) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
