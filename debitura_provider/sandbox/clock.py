"""Time and chance, both under control: a speed-scaled clock and seeded randomness.

Timestamps stay real (UTC wall clock) because clients and webhook receivers compare them with their own
clocks; only *durations* the sandbox waits for (a partner's next step, a retry delay) are compressed.
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
from datetime import date, datetime, timezone
from datetime import time as daytime
from uuid import UUID

DAY = 86400.0
HOUR = 3600.0

_REFERENCE_ALPHABET = string.ascii_uppercase + string.digits


class Clock:
    """Real time for timestamps, ``speed``-compressed time for waiting."""

    def __init__(self, speed: float) -> None:
        self.speed = speed

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)

    @staticmethod
    def epoch() -> float:
        return time.time()

    def real_seconds(self, sandbox_seconds: float) -> float:
        """How long a sandbox duration lasts in real time."""
        return sandbox_seconds / self.speed

    def due(self, sandbox_seconds: float) -> float:
        """The real epoch second at which something ``sandbox_seconds`` from now happens."""
        return self.epoch() + self.real_seconds(sandbox_seconds)


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


class Timers:
    """Named one-shot timers on the running loop: rescheduling a name replaces its timer."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._handles: dict[Hashable, asyncio.TimerHandle] = {}

    def at(self, name: Hashable, epoch: float, callback: Callable[[], None]) -> None:
        self.cancel(name)

        def fire() -> None:
            self._handles.pop(name, None)
            callback()

        delay = max(0.0, epoch - self._clock.epoch())
        self._handles[name] = asyncio.get_running_loop().call_later(delay, fire)

    def cancel(self, name: Hashable) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
