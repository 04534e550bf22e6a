"""The running sandbox: state, clock, timers and the outbox webhooks leave through, wired together.

The outbox is whatever :mod:`debitura_provider.sandbox.delivery` builds for this sandbox (passed in as a
factory, so the domain does not depend on how events are delivered). Handlers and background steps
all run on the server's one event loop and never await in the middle of a change, so each change is
atomic without locks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol
from uuid import UUID

from debitura_provider.api.models import Lifecycle
from debitura_provider.sandbox.config import SandboxConfig
from debitura_provider.sandbox.domain import events
from debitura_provider.sandbox.domain.clock import Clock, Timers
from debitura_provider.sandbox.domain.state import (
    Actor,
    CaseRecord,
    EventRecord,
    Partner,
    Subscription,
    TimelineEntry,
    User,
)
from debitura_provider.sandbox.domain.store import Store

SYSTEM = Actor(type="System", name="Debitura")


class Outbox(Protocol):
    """Where webhook events go: queued per subscription, delivered in the background."""

    def publish(self, case: CaseRecord, event: str, data: events.EventData) -> int:
        """Send an event that just happened to everyone subscribed to it; how many deliveries were queued."""
        ...

    def send(self, case: CaseRecord, event: str, data: events.EventData, to: Iterable[Subscription]) -> int:
        """Queue one event for the given subscriptions."""
        ...

    def replay(self, row: EventRecord) -> None:
        """Deliver a logged event again."""
        ...

    def drop(self, row_id: UUID) -> None:
        """Forget a pending delivery."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Sandbox:
    """Everything a handler or a background step needs."""

    def __init__(self, config: SandboxConfig, outbox: Callable[[Sandbox], Outbox]) -> None:
        self.config = config
        self.store = Store(config)
        self.clock = Clock(config.speed, self.store.sandbox_time)
        self.store.read_clock = self.clock.sandbox_time
        self.base_url = f"http://{config.host}:{config.port}"
        self.timers = Timers(self.clock)
        self.dispatcher = outbox(self)
        self._on_start: list[Callable[[], None]] = []

    def on_start(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop once it starts (background workers resume their schedules)."""
        self._on_start.append(callback)

    async def start(self) -> None:
        await self.dispatcher.start()
        for callback in self._on_start:
            callback()

    async def stop(self) -> None:
        self.timers.cancel_all()
        await self.dispatcher.stop()
        self.store.close()

    # --- helpers for every change to a case -------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def partner(self, case: CaseRecord, role: str) -> Partner:
        return self.store.partners[case.collection_partner_id if role == "collection" else case.managing_partner_id]

    def record(
        self,
        case: CaseRecord,
        kind: str,
        title: str,
        description: str,
        actor: Actor = SYSTEM,
        when: datetime | None = None,
    ) -> None:
        """Add a timeline item (every event leaves one) and mark the case changed."""
        now = self.now()
        case.timeline.append(
            TimelineEntry(
                seq=len(case.timeline),
                date=when or now,
                type=kind,
                title=title,
                description=description,
                actor=actor,
            )
        )
        case.date_updated = now
        self.store.touch(case)

    def set_lifecycle(self, case: CaseRecord, new: Lifecycle, actor: Actor = SYSTEM, why: str = "") -> None:
        """Move a case to a new lifecycle: timeline item and ``case.updated`` webhook."""
        old = case.lifecycle
        if old is new:
            return
        case.lifecycle = new
        description = f"{old.value} \u2192 {new.value}" + (f": {why}" if why else "")
        self.record(case, "LifecycleChanged", f"Status changed to {new.value}", description, actor)
        self.dispatcher.publish(case, "case.updated", events.case_updated(case, old, new))


def partner_actor(user: User) -> Actor:
    return Actor(type="Partner user", name=user.name)


def creditor_actor(case: CaseRecord) -> Actor:
    return Actor(type="Creditor user", name=case.creditor_name)
