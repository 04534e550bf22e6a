"""Sending the watch's calls: a sync and an async driver, and the triggerer-wide shared poller."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from debitura_provider.api import endpoints
from debitura_provider.api._call import Call
from debitura_provider.api.client import AsyncDebituraClient, DebituraClient
from debitura_provider.api.errors import DebituraError, RequestValidationError
from debitura_provider.api.models import Case
from debitura_provider.api.watch.cycle import Steps
from debitura_provider.api.watch.scan import WatchedListing

log = logging.getLogger("debitura_provider.api.watch")

T = TypeVar("T")
R = TypeVar("R")


def run_sync(client: DebituraClient, steps: Steps[R]) -> R:
    """Drive a procedure with the blocking client, one call after another."""
    try:
        calls = next(steps)
        while True:
            calls = steps.send([client.send(call) for call in calls])
    except StopIteration as stop:
        result: R = stop.value
        return result


async def run_async(send: Callable[[Call[Any]], Awaitable[Any]], steps: Steps[R]) -> R:
    """Drive a procedure with an async sender; the calls of one step go out concurrently."""
    try:
        calls = next(steps)
        while True:
            calls = steps.send(list(await asyncio.gather(*(send(call) for call in calls))))
    except StopIteration as stop:
        result: R = stop.value
        return result


ClientOpener = Callable[[], Awaitable[AsyncDebituraClient]]


class Subscription:
    """One watcher's share of a :class:`SharedCasePoller`; use as an async context manager."""

    def __init__(self, poller: SharedCasePoller, case_ids: Sequence[str], interval: float, chunk_size: int) -> None:
        self.poller = poller
        self.case_ids = list(case_ids)
        self.interval = interval
        self.chunk_size = chunk_size
        self._ready = asyncio.Event()
        self._snapshots: dict[str, Case] = {}
        self._error: BaseException | None = None

    async def __aenter__(self) -> Subscription:
        self.poller._join(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.poller._leave(self)

    async def next(self) -> dict[str, Case]:
        """The snapshots of this watcher's cases from the next cycle; raises that cycle's error."""
        await self._ready.wait()
        self._ready.clear()
        error, self._error = self._error, None
        if error is not None:
            raise error
        return self._snapshots

    def _deliver(self, snapshots: Mapping[str, Case]) -> None:
        self._snapshots = {cid: snapshots[cid] for cid in self.case_ids if cid in snapshots}
        self._error = None
        self._ready.set()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._ready.set()


class SharedCasePoller:
    """Polls the union of its subscribers' cases: ``ceil(total / chunk)`` list requests per cycle,
    or about one from :data:`~debitura_provider.api.watch.scan.SCAN_THRESHOLD` cases on (the scan).

    Many deferred sensors in one triggerer each subscribe their ids; one loop lists them all and
    fans the snapshots out. The cycle runs at the shortest subscriber interval, backs off
    exponentially while Debitura is unreachable, and stops (closing its client) when the last
    subscriber leaves. Identical GETs sent through :meth:`fetch` within a cycle share one request.
    """

    def __init__(self, open_client: ClientOpener, *, max_backoff: float = 300.0) -> None:
        self._open_client = open_client
        self._max_backoff = max_backoff
        self._subscribers: list[Subscription] = []
        self._client: AsyncDebituraClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[tuple[str, tuple[tuple[str, str], ...]], asyncio.Future[Any]] = {}
        self._on_close: Callable[[], None] | None = None
        self.closed = False
        self.cycles = 0
        self._listing = WatchedListing()  # Ids chunks, or the portfolio scan for large watched sets

    @property
    def watched(self) -> int:
        """How many distinct cases the subscribers watch (what one cycle lists)."""
        return len({cid for s in self._subscribers for cid in s.case_ids})

    def subscribe(
        self, case_ids: Sequence[str], *, interval: float, chunk_size: int = endpoints.MAX_PAGE_SIZE
    ) -> Subscription:
        if not 1 <= chunk_size <= endpoints.MAX_PAGE_SIZE:
            raise RequestValidationError("watch", {"chunk_size": [f"must be 1 to {endpoints.MAX_PAGE_SIZE}"]})
        return Subscription(self, case_ids, max(interval, 0.0), chunk_size)

    async def fetch(self, call: Call[T]) -> T:
        """Send through the shared client (and rate budget); concurrent identical GETs share one request."""
        client = self._client
        if client is None:
            raise RuntimeError("the poller has no open client (no cycle has run)")
        if call.method != "GET":
            return await client.send(call)
        key = (call.path, call.params)
        future = self._inflight.get(key)
        if future is None:
            future = self._inflight[key] = asyncio.ensure_future(client.send(call))
            future.add_done_callback(_consume)  # an abandoned read must not warn "never retrieved"
        result: T = await asyncio.shield(future)
        return result

    def _join(self, sub: Subscription) -> None:
        if self.closed:
            raise RuntimeError("this poller has stopped; get a new one from shared_poller()")
        self._subscribers.append(sub)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="debitura-shared-case-poller")

    def _leave(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
        if not self._subscribers and not self.closed:
            self.closed = True
            if self._on_close is not None:
                self._on_close()
            if self._task is not None:
                self._task.cancel()

    async def _run(self) -> None:
        try:
            client = self._client = await self._open_client()
        except Exception as exc:  # e.g. the connection is missing: every subscriber must hear it
            self._stop(exc)
            return
        try:
            await self._cycles(client)
        except Exception as exc:
            log.exception("Shared case poller stopped")
            self._stop(exc)
        finally:
            self._client = None
            await client.aclose()

    async def _cycles(self, client: AsyncDebituraClient) -> None:
        failures = 0
        while self._subscribers:
            interval = min(s.interval for s in self._subscribers)
            await asyncio.sleep(min(interval * 2 ** min(failures, 10), max(self._max_backoff, interval)))
            subscribers = list(self._subscribers)
            if not subscribers:
                return
            ids = list(dict.fromkeys(cid for s in subscribers for cid in s.case_ids))
            chunk = min(s.chunk_size for s in subscribers)
            self._inflight = {}
            self.cycles += 1
            try:
                snapshots = await run_async(client.send, self._listing.snapshots(ids, chunk))
            except DebituraError as exc:
                failures += 1
                log.warning("Listing %d watched cases failed (%d in a row): %s", len(ids), failures, exc)
                for s in subscribers:
                    s._fail(exc)
                continue
            failures = 0
            for s in subscribers:
                s._deliver(snapshots)

    def _stop(self, error: Exception) -> None:
        """Hand a fatal error to every subscriber and retire, so the next watcher starts afresh."""
        subscribers, self._subscribers = self._subscribers, []
        self.closed = True
        if self._on_close is not None:
            self._on_close()
        for s in subscribers:
            s._fail(error)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedCasePoller]] = (
    weakref.WeakKeyDictionary()
)


def shared_poller(key: str, open_client: ClientOpener) -> SharedCasePoller:
    """The running event loop's poller for ``key`` (say, a connection id); made on first use.

    Must be called from inside the loop. Pollers are per loop because their client and tasks are.
    """
    loop = asyncio.get_running_loop()
    pollers = _POLLERS.setdefault(loop, {})
    poller = pollers.get(key)
    if poller is None or poller.closed:
        poller = pollers[key] = SharedCasePoller(open_client)

        def forget(p: SharedCasePoller = poller) -> None:
            if pollers.get(key) is p:
                del pollers[key]

        poller._on_close = forget
    return poller
