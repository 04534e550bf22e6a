"""``DebituraPortfolioTrigger``: Debitura events from the portfolio scan, for an ``AssetWatcher``.

Event-driven scheduling without webhooks: the trigger runs the incremental scan
(:mod:`debitura_provider.api.watch.scan`) in the triggerer every ``poll_interval`` seconds and
yields one ``TriggerEvent`` per Debitura event. The payload is the envelope the webhook
receiver records, ``{"id", "type", "createdAt", "data"}`` (ids and exact amounts, never the
debtor), and the ``id`` is stable for the same change, so a DAG fed by webhooks and by the scan
can de-duplicate. Airflow records each payload as an event of every asset the trigger watches:
give the payments asset a trigger with ``events=PAYMENT_EVENTS`` and the lifecycle asset one with
``events=CASE_EVENTS`` (:func:`portfolio_watchers` builds both).

Where the cursor lives, so a restarted triggerer resumes where it stopped (a payment made while it
was down is emitted once it is back, once): on Airflow 3.3+ in the asset state store of the watched
asset (key ``debitura-portfolio-scan``); before 3.3, or run outside a triggerer, in a JSON file,
``state_path`` or ``$AIRFLOW_HOME/debitura/portfolio/<conn id>-<events>.json``, replaced
atomically. With several triggerer hosts before 3.3, point ``state_path`` at shared storage.

How a restart keeps each event once: a cycle's events are saved with the advanced cursor, in one
write, before the first is yielded (the outbox), so a stop at any point neither loses them nor
scans them again. Airflow's triggerer keeps a yielded event in memory for up to a second before
writing it to its database, and drops what it has not written when it stops; so the outbox is
emptied only :data:`HANDOVER` seconds after the last event was handed over. A triggerer stopped
inside that window yields those events again after the restart, with the same ids (the safe
direction: a consumer de-duplicates by id, and the portfolio DAG does); at any other moment a
restart emits nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from debitura_provider.api.errors import (
    AuthenticationError,
    ConfigurationError,
    DebituraError,
    PermissionDeniedError,
)
from debitura_provider.api.watch.poller import run_async
from debitura_provider.api.watch.scan import (
    CASE_EVENTS,
    DEFAULT_OVERLAP,
    EVENT_TYPES,
    PAYMENT_EVENTS,
    PortfolioScan,
    ScanState,
    events_of,
)
from debitura_provider.assets import DEBITURA_CASE_LIFECYCLE, DEBITURA_PAYMENTS
from debitura_provider.compat import Asset
from debitura_provider.failures import is_transient
from debitura_provider.hooks.debitura import DebituraHook

STATE_KEY = "debitura-portfolio-scan"
HANDOVER = 5.0
"""Seconds after handing events to Airflow before they count as written (its triggerer writes yielded
events about once a second); a restart inside this window emits them again, with the same ids."""
MAX_BACKOFF = 300.0
"""The longest wait between two tries while Debitura is unreachable."""
sleep = asyncio.sleep
"""How the trigger waits between cycles (a test compresses time by replacing it)."""


def _checked_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown or not chosen:
        raise ConfigurationError(f"events: give some of {', '.join(EVENT_TYPES)} (got {chosen!r})")
    return chosen


class DebituraPortfolioTrigger(BaseEventTrigger):
    """Yields Debitura events found by the portfolio scan, one ``TriggerEvent`` each, for ever.

    :param debitura_conn_id: the ``debitura`` connection.
    :param poll_interval: seconds between scan cycles (one list request while little changes).
    :param events: which event types to yield (default all four); payments are read only if a
        payment type is among them.
    :param start: ISO time; the first cycle reports every change after it instead of a silent baseline.
    :param overlap: seconds before the cursor each cycle re-reads (late commits, equal timestamps).
    :param state_path: the cursor's file where the asset state store is not available.
    """

    def __init__(
        self,
        *,
        debitura_conn_id: str = DebituraHook.default_conn_name,
        poll_interval: float = 60.0,
        events: Sequence[str] = EVENT_TYPES,
        start: str | None = None,
        overlap: float = DEFAULT_OVERLAP.total_seconds(),
        state_path: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.debitura_conn_id = debitura_conn_id
        self.poll_interval = float(poll_interval)
        self.events = _checked_events(events)
        self.start = start
        self.overlap = float(overlap)
        self.state_path = state_path
        if not self.poll_interval > 0:
            raise ConfigurationError("poll_interval: must be more than 0 seconds")
        if start is not None:
            try:
                parsed = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigurationError(f"start: {start!r} is not an ISO date-time") from None
            if parsed.tzinfo is None:
                raise ConfigurationError("start: give a timezone (e.g. 2026-01-01T00:00:00Z)")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "debitura_conn_id": self.debitura_conn_id,
                "poll_interval": self.poll_interval,
                "events": self.events,
                "start": self.start,
                "overlap": self.overlap,
                "state_path": self.state_path,
            },
        )

    # --- where the cursor is kept ----------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        """The JSON file holding the cursor where the asset state store is not used."""
        if self.state_path:
            return Path(self.state_path).expanduser()
        home = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()
        digest = hashlib.sha256(",".join(sorted(self.events)).encode()).hexdigest()[:12]
        return home / "debitura" / "portfolio" / f"{self.debitura_conn_id}-{digest}.json"

    def _accessor(self) -> Any:
        """The 3.3+ asset state store of the watched asset, or None (older Airflow, or not in a triggerer)."""
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return None
        asset: Asset = DEBITURA_PAYMENTS if set(self.events) & set(PAYMENT_EVENTS) else DEBITURA_CASE_LIFECYCLE
        try:
            return store[asset]
        except (KeyError, TypeError):
            return store  # a single watched asset of another name: its accessor

    async def load_state(self) -> tuple[ScanState, list[dict[str, Any]]]:
        """The scan's state and the outbox: events saved but perhaps not written by Airflow yet."""
        accessor = self._accessor()
        if accessor is not None:
            data = await accessor.aget(STATE_KEY)
        else:
            path = self.state_file
            text = await asyncio.to_thread(lambda: path.read_text() if path.is_file() else "")
            data = json.loads(text) if text else None
        outbox = list(data.pop("outbox", ())) if isinstance(data, dict) else []
        return ScanState.from_json(data), outbox

    async def save_state(self, state: ScanState, outbox: Sequence[dict[str, Any]] = ()) -> None:
        """One write of the state and the outbox; it completes even if the trigger is cancelled meanwhile."""
        data = {**state.to_json(), "outbox": list(outbox)}
        accessor = self._accessor()
        if accessor is not None:
            write = accessor.aset(STATE_KEY, data)
        else:
            write = asyncio.to_thread(_write_atomically, self.state_file, json.dumps(data, separators=(",", ":")))
        await _uninterrupted(write)

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        state, outbox = await self.load_state()
        start = datetime.fromisoformat(self.start.replace("Z", "+00:00")) if self.start else None
        payments = bool(set(self.events) & set(PAYMENT_EVENTS))
        client = await DebituraHook(self.debitura_conn_id).get_async_client()
        failures = 0
        try:
            while True:
                if outbox:
                    for envelope in outbox:
                        yield TriggerEvent(envelope)  # type: ignore[no-untyped-call]
                    settle = min(HANDOVER, self.poll_interval)
                    await sleep(settle)
                    outbox = []
                    await self.save_state(state)
                    await sleep(self.poll_interval - settle)
                    continue
                scan = PortfolioScan(state, start=start, overlap=timedelta(seconds=self.overlap), payments=payments)
                try:
                    result = await run_async(client.send, scan.cycle())
                except DebituraError as exc:
                    if not is_transient(exc) and not _may_recover(exc):
                        raise
                    failures += 1
                    self.log.warning("Portfolio scan failed (%d in a row), will retry: %s", failures, exc)
                    await sleep(min(self.poll_interval * 2 ** min(failures, 10), MAX_BACKOFF))
                    continue
                failures = 0
                state, outbox = scan.state, events_of(result, self.events)
                await self.save_state(state, outbox)
                if result.changes:
                    self.log.info(
                        "Portfolio scan: %d change(s) on %d case(s), %d list and %d payments request(s)",
                        len(result.changes),
                        len(result.cases),
                        result.list_requests,
                        result.payment_requests,
                    )
                if not outbox:
                    await sleep(self.poll_interval)
        finally:
            await client.aclose()


async def _uninterrupted(write: Awaitable[None]) -> None:
    """Await ``write`` to its end even when cancelled meanwhile, then let the cancellation through.

    A state write cut short could leave a restarted trigger reading the state from before it.
    """
    task = asyncio.ensure_future(write)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _may_recover(exc: DebituraError) -> bool:
    """Refusals an operator can fix without touching the DAG (a rotated key): keep trying, slowly."""
    return isinstance(exc, AuthenticationError | PermissionDeniedError)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    with open(temp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def portfolio_watchers(
    *, debitura_conn_id: str = DebituraHook.default_conn_name, poll_interval: float = 60.0, **kwargs: Any
) -> tuple[Asset, Asset]:
    """The two Debitura assets with a scan watcher each: schedule a DAG on either or both.

    They are the assets the webhook receiver updates (same name and URI), so the same DAG runs
    for webhook deliveries and for scan findings. ``kwargs`` go to both triggers.
    """
    from airflow.sdk import AssetWatcher

    def watched(asset: Asset, events: Sequence[str]) -> Asset:
        trigger = DebituraPortfolioTrigger(
            debitura_conn_id=debitura_conn_id, poll_interval=poll_interval, events=events, **kwargs
        )
        watcher = AssetWatcher(name=f"{asset.name}_scan", trigger=trigger)
        return Asset(name=asset.name, uri=asset.uri, group=asset.group, watchers=[watcher])

    return watched(DEBITURA_PAYMENTS, PAYMENT_EVENTS), watched(DEBITURA_CASE_LIFECYCLE, CASE_EVENTS)
