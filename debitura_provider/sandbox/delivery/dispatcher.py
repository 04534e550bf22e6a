"""Webhook delivery: who gets an event, signing, the retry schedule and auto-disable (API-NOTES §6.4-6.6).

Each event becomes one log row per matching subscription. Rows are sent by tasks on the server's event
loop with httpx (10 s timeout). A failed attempt is retried on the documented schedule (60 s, 120 s, ...
1800 s, ±10 % seeded jitter) compressed by the sandbox speed. When one event has failed all eight
attempts of its round, the subscription is disabled (failures of different events do not add up), and
so it is by a single 410 Gone. Before each attempt the row is leased with its next retry
time, so a sandbox restarted with ``--state`` resumes unfinished deliveries (at least once, as Debitura).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from uuid import UUID

import httpx

from debitura_provider.api.webhooks import EVENT_HEADER, REPLAY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from debitura_provider.sandbox.domain import events
from debitura_provider.sandbox.domain.clock import Clock, Timers, rng
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.state import CaseRecord, EventRecord, Subscription
from debitura_provider.sandbox.domain.store import Store

log = logging.getLogger("debitura_provider.sandbox.delivery")

RETRY_DELAYS = (60.0, 120.0, 240.0, 480.0, 960.0, 1800.0, 1800.0)
"""Sandbox seconds before attempts 2 to 8."""
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Debitura-Webhooks/1.0 (sandbox)"
EXHAUSTED = f"Exceeded maximum retry attempts ({MAX_ATTEMPTS} failures)"
GONE = "Endpoint returned 410 Gone"


class Dispatcher:
    """Queues, signs and sends webhook deliveries on the running event loop."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        timers: Timers,
        base_url: Callable[[], str],
        managing_partner_events: bool = True,
    ) -> None:
        self._managing_partner_events = managing_partner_events
        self._store = store
        self._clock = clock
        self._timers = timers
        self._base_url = base_url
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    @classmethod
    def of(cls, sb: Sandbox) -> Dispatcher:
        """The outbox of a sandbox (the factory :class:`Sandbox` is built with)."""
        return cls(sb.store, sb.clock, sb.timers, lambda: sb.base_url, sb.config.managing_partner_events)

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)
        for row in self._store.events.values():
            if row.next_attempt_at is not None:
                self._arm(row)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- enqueueing -------------------------------------------------------------------------------

    def recipients(self, case: CaseRecord, event: str) -> list[Subscription]:
        """Active subscriptions of the case's managing and collection partner for this event.

        Test-mode subscriptions get only test-case events; live ones only production events. Whether a
        managing partner gets events of the production cases it referred is documented nowhere
        (``managing_partner_events``); it always gets those of its test cases.
        """
        parties = {case.collection_partner_id}
        if case.is_test or self._managing_partner_events:  # --managing-partner-events off: none for its live cases
            parties.add(case.managing_partner_id)
        return [
            s
            for s in self._store.subscriptions.values()
            if s.partner_id in parties and s.is_active and event in s.events and s.is_test_mode == case.is_test
        ]

    def publish(self, case: CaseRecord, event: str, data: events.EventData) -> int:
        """Send an event that just happened to everyone subscribed to it."""
        return self.send(case, event, data, self.recipients(case, event))

    def send(self, case: CaseRecord, event: str, data: events.EventData, to: Iterable[Subscription]) -> int:
        """Queue one event for the given subscriptions; one envelope id for all of them."""
        event_id = self._store.child_id(case)
        now = self._clock.now()
        count = 0
        for sub in to:
            role = "cases" if sub.partner_id == case.collection_partner_id else "managed-cases"
            link = f"{self._base_url()}/{role}/{case.id}"
            row = EventRecord(
                id=self._store.child_id(case),
                subscription_id=sub.id,
                partner_id=sub.partner_id,
                case_id=case.id,
                event_type=event,
                payload=events.envelope(event_id, event, now, data, link),
                created_at=now,
            )
            self._store.events[row.id] = row
            self._schedule(row, 0.0)
            count += 1
        return count

    def replay(self, row: EventRecord) -> None:
        """Deliver a logged event again with its original payload, as attempt 1 of a new round."""
        row.replay = True
        row.round_attempts = 0
        self._schedule(row, 0.0)

    def drop(self, row_id: UUID) -> None:
        self._timers.cancel(("delivery", row_id))

    def _schedule(self, row: EventRecord, delay: float) -> None:
        """Attempt ``delay`` sandbox seconds from now."""
        row.next_attempt_at = self._clock.due(delay)
        self._store.touch(row)
        self._arm(row)

    def _arm(self, row: EventRecord) -> None:
        assert row.next_attempt_at is not None
        row_id = row.id
        self._timers.at(("delivery", row_id), row.next_attempt_at, lambda: self._launch(row_id))

    def _launch(self, row_id: UUID) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(row_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sending ----------------------------------------------------------------------------------

    async def _guarded(self, row_id: UUID) -> None:
        try:
            await self._attempt(row_id)
        except Exception:
            log.exception("Webhook delivery %s failed inside the sandbox", row_id)

    async def _attempt(self, row_id: UUID) -> None:
        row = self._store.events.get(row_id)
        sub = self._store.subscriptions.get(row.subscription_id) if row else None
        if row is None:
            return
        if sub is None or not sub.is_active:
            row.next_attempt_at = None
            self._store.touch(row)
            return
        row.attempt_count += 1
        row.round_attempts += 1
        row.next_attempt_at = self._clock.due(self._retry_delay(row))  # lease: resumed after a restart
        self._store.touch(row)
        code, error = await self._post(sub, row)
        if self._store.events.get(row_id) is not row:
            return  # the case was deleted while the request was in flight
        self._record(row, sub, code, error)

    async def _post(self, sub: Subscription, row: EventRecord) -> tuple[int | None, str | None]:
        assert self._http is not None
        body = row.payload.encode()
        timestamp = int(self._clock.epoch())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(sub.secret, body, timestamp),
            TIMESTAMP_HEADER: str(timestamp),
            EVENT_HEADER: row.event_type,
        }
        if row.replay:
            headers[REPLAY_HEADER] = "true"
        try:
            response = await self._http.post(sub.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}".rstrip(": ")
        if response.is_success:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    def _record(self, row: EventRecord, sub: Subscription, code: int | None, error: str | None) -> None:
        row.last_response_code = code
        row.last_error = error
        row.next_attempt_at = None
        if error is None:
            row.delivered_at = self._clock.now()
        elif code == 410:
            self._disable(sub, GONE)
        else:
            if row.round_attempts >= MAX_ATTEMPTS:
                self._disable(sub, EXHAUSTED)  # this event's retries are exhausted (not failures across events)
            else:
                self._schedule(row, self._retry_delay(row))
            log.info(
                "Webhook %s to subscription %s failed (attempt %d): %s",
                row.event_type,
                sub.id,
                row.round_attempts,
                error,
            )
        self._store.touch(row)
        self._store.touch(sub)

    def _retry_delay(self, row: EventRecord) -> float:
        """Sandbox seconds before the next attempt of this round."""
        index = min(row.round_attempts, len(RETRY_DELAYS)) - 1
        jitter = rng(self._store.ids.seed, "retry", row.id, row.attempt_count).uniform(0.9, 1.1)
        return RETRY_DELAYS[max(index, 0)] * jitter

    def _disable(self, sub: Subscription, reason: str) -> None:
        sub.is_active = False
        sub.disabled_reason = reason
        sub.updated_utc = self._clock.now()
        for row in self._store.events.values():
            if row.subscription_id == sub.id and row.next_attempt_at is not None:
                row.next_attempt_at = None
                self.drop(row.id)
                self._store.touch(row)
        log.warning("Webhook subscription %s disabled: %s", sub.id, reason)
