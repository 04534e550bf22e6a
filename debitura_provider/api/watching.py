"""Watching many cases for payments and lifecycle changes with as few requests as possible.

One poll cycle over N cases costs ``ceil(N / chunk_size)`` ``GET /managed-cases?Ids=...`` requests,
plus one ``GET /managed-cases/{id}/payments`` for each case whose money moved since the last
cycle. Every decision here is a pure function of the snapshots and of a JSON-safe
:class:`WatchState`, so the sensor (sync client), the trigger (async client) and the
triggerer-wide :class:`SharedCasePoller` share them: only the sending differs.

Why no payment is missed: Debitura defines ``remainder`` as principal + fees - payments, so
``paid_off = grossAmount + totalAddedFees - remainder`` moves whenever a payment is recorded,
edited or deleted. A case seen for the first time with ``paid_off > 0`` has payments, and they are
fetched and compared with the known payment ids (empty by default: any payment counts, including
one made between the case's creation and the first poll). Afterwards payments are fetched
whenever ``paid_off``, the remainder or the lifecycle changed. The state is only advanced after
those payments were read, so a failed cycle is repeated, not skipped, and a trigger restarted
from its serialized state re-evaluates from the same baseline. What polling cannot see: a payment
deleted and another of exactly the same amount recorded between two polls, or (for
``lifecycle_changed``) a lifecycle that changed and changed back between two polls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, TypeVar

from debitura_provider.api import endpoints
from debitura_provider.api._call import Call, uuid_arg
from debitura_provider.api.client import AsyncDebituraClient, DebituraClient
from debitura_provider.api.errors import DebituraError, RequestValidationError
from debitura_provider.api.models import Case, CasePage, Lifecycle, Payment

log = logging.getLogger("debitura_provider.api.watching")

T = TypeVar("T")
R = TypeVar("R")

CENT = 0.005
"""Half a cent: money differences below this are rounding, not a payment."""

Steps = Generator[list[Call[Any]], list[Any], R]
"""A sans-I/O procedure: it yields the calls to send next and receives their results, in order."""


class Condition(str, Enum):
    """What a watched case must do to satisfy the watch."""

    NEW_PAYMENT = "new_payment"
    REMAINDER_AT_MOST = "remainder_at_most"
    LIFECYCLE_IN = "lifecycle_in"
    LIFECYCLE_CHANGED = "lifecycle_changed"


class Require(str, Enum):
    """Whether every watched case must satisfy the condition, or one is enough."""

    ALL = "all"
    ANY = "any"


@dataclass(frozen=True)
class WatchSpec:
    """The condition, validated once; JSON-safe through :meth:`to_json` for trigger kwargs."""

    condition: Condition
    remainder_at_most: float | None = None
    lifecycles: tuple[Lifecycle, ...] = ()
    require: Require = Require.ALL

    @classmethod
    def build(
        cls,
        condition: str,
        *,
        remainder_at_most: float | None = None,
        lifecycles: Iterable[str | Lifecycle] | None = None,
        require: str = "all",
    ) -> WatchSpec:
        """Check the combination and name the offending argument, before anything is polled."""
        errors: dict[str, list[str]] = {}
        try:
            chosen = Condition(condition)
        except ValueError:
            allowed = ", ".join(c.value for c in Condition)
            raise RequestValidationError("watch", {"condition": [f"{condition!r} is not one of {allowed}"]}) from None
        try:
            mode = Require(require)
        except ValueError:
            errors["require"] = [f"{require!r} is not 'all' or 'any'"]
            mode = Require.ALL
        threshold: float | None = None
        if chosen is Condition.REMAINDER_AT_MOST:
            try:
                threshold = float(remainder_at_most) if remainder_at_most is not None else None
            except (TypeError, ValueError):
                threshold = None
            if threshold is None or not math.isfinite(threshold) or threshold < 0:
                errors["remainder_at_most"] = ["give the amount (0 or more) the remainder must fall to"]
        states: tuple[Lifecycle, ...] = ()
        if chosen is Condition.LIFECYCLE_IN:
            try:
                states = tuple(dict.fromkeys(
                    s if isinstance(s, Lifecycle) else Lifecycle.parse(s) for s in lifecycles or ()
                ))
            except ValueError as exc:
                errors["lifecycles"] = [str(exc)]
            else:
                if not states:
                    errors["lifecycles"] = ["give at least one lifecycle to wait for, e.g. ['Active']"]
        if errors:
            raise RequestValidationError("watch", errors)
        return cls(chosen, threshold, states, mode)

    def to_json(self) -> dict[str, Any]:
        return {
            "condition": self.condition.value,
            "remainder_at_most": self.remainder_at_most,
            "lifecycles": [s.api_name for s in self.lifecycles],
            "require": self.require.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatchSpec:
        return cls.build(
            data["condition"],
            remainder_at_most=data.get("remainder_at_most"),
            lifecycles=data.get("lifecycles"),
            require=data.get("require", "all"),
        )

    @property
    def uses_payments(self) -> bool:
        """Whether satisfying cases come with the payments that satisfied them."""
        return self.condition in (Condition.NEW_PAYMENT, Condition.REMAINDER_AT_MOST)


@dataclass
class CaseMemo:
    """What a case looked like at the last completed cycle, and its lifecycle at the start."""

    start_lifecycle: str | None
    lifecycle: str | None
    remainder: float
    paid_off: float

    def to_json(self) -> dict[str, Any]:
        return {
            "startLifecycle": self.start_lifecycle,
            "lifecycle": self.lifecycle,
            "remainder": self.remainder,
            "paidOff": self.paid_off,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseMemo:
        return cls(data.get("startLifecycle"), data.get("lifecycle"), float(data["remainder"]), float(data["paidOff"]))


@dataclass
class WatchState:
    """Everything a watch has learnt, JSON-safe, so it survives a reschedule or a triggerer restart.

    ``satisfied`` maps each satisfied case id to the payments (wire form) that satisfied it;
    satisfaction is sticky: a case that met the condition once counts even if it moves on.
    """

    known_payment_ids: set[str] = field(default_factory=set)
    cases: dict[str, CaseMemo] = field(default_factory=dict)
    satisfied: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "knownPaymentIds": sorted(self.known_payment_ids),
            "cases": {cid: memo.to_json() for cid, memo in self.cases.items()},
            "satisfied": self.satisfied,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatchState:
        return cls(
            known_payment_ids={str(i) for i in data.get("knownPaymentIds", ())},
            cases={cid: CaseMemo.from_json(m) for cid, m in data.get("cases", {}).items()},
            satisfied={cid: list(p) for cid, p in data.get("satisfied", {}).items()},
        )


@dataclass(frozen=True)
class WatchResult:
    """What a finished watch returns: latest snapshots, satisfying payments, satisfied ids (input order)."""

    cases: list[dict[str, Any]]
    payments: dict[str, list[dict[str, Any]]]
    satisfied: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "payments": self.payments, "satisfied": self.satisfied}


class CasesNotFound(DebituraError):
    """Watched cases that the list endpoint no longer returns (wrong id, another partner's, or deleted)."""

    def __init__(self, case_ids: Sequence[str]) -> None:
        self.case_ids = list(case_ids)
        shown = ", ".join(self.case_ids[:10]) + (" ..." if len(self.case_ids) > 10 else "")
        super().__init__(f"{len(self.case_ids)} watched case(s) not found among this partner's managed cases: {shown}")


def normalize_case_ids(case_ids: str | Iterable[str]) -> list[str]:
    """One id or several, as canonical UUID strings, duplicates dropped; refused with the field named."""
    raw = [case_ids] if isinstance(case_ids, str) else list(case_ids)
    if not raw:
        raise RequestValidationError("watch", {"case_ids": ["give at least one case id"]})
    return list(dict.fromkeys(str(uuid_arg(str(i), "case_ids")) for i in raw))


def paid_off(case: Case) -> float:
    """How much payments took off the case: principal + fees - remainder (Debitura's definition)."""
    return case.gross_amount + case.total_added_fees - case.remainder


def wire(model: Case | Payment) -> dict[str, Any]:
    """The JSON-safe camelCase dict Airflow can pass downstream."""
    return model.model_dump(mode="json", by_alias=True)


class CaseWatch:
    """Which cases, what to wait for, and what has been seen so far."""

    def __init__(
        self,
        case_ids: str | Iterable[str],
        spec: WatchSpec,
        state: WatchState | None = None,
        *,
        known_payment_ids: Iterable[str] = (),
    ) -> None:
        self.case_ids = normalize_case_ids(case_ids)
        self.spec = spec
        self.state = state or WatchState(known_payment_ids={str(i) for i in known_payment_ids})
        self._latest: dict[str, Case] = {}

    def cycle(self, snapshots: Mapping[str, Case]) -> Steps[WatchResult | None]:
        """Evaluate one poll's snapshots; yields the payment reads it needs; returns the result once done."""
        missing = [cid for cid in self.case_ids if cid not in snapshots]
        if missing:
            raise CasesNotFound(missing)
        memos = {cid: self._memo(cid, snapshots[cid]) for cid in self.case_ids}
        reached = [cid for cid in self.case_ids if self._reached(snapshots[cid], memos[cid])]
        fetch = [cid for cid in self.case_ids if self._needs_payments(cid, snapshots[cid], memos[cid], reached)]
        found: dict[str, list[Payment]] = {}
        if fetch:
            lists = yield [endpoints.get_managed_case_payments(cid) for cid in fetch]
            found = dict(zip(fetch, lists, strict=True))
        known = self.state.known_payment_ids
        for cid in self.case_ids:
            if cid in self.state.satisfied:
                continue
            fresh = [p for p in found.get(cid, ()) if str(p.id) not in known]
            if self.spec.condition is Condition.NEW_PAYMENT:
                if fresh:
                    self.state.satisfied[cid] = [wire(p) for p in fresh]
            elif cid in reached:
                self.state.satisfied[cid] = [wire(p) for p in fresh] if self.spec.uses_payments else []
        self.state.cases.update(memos)
        self._latest.update({cid: snapshots[cid] for cid in self.case_ids})
        return self.result() if self.done else None

    @property
    def done(self) -> bool:
        satisfied = sum(1 for cid in self.case_ids if cid in self.state.satisfied)
        return satisfied > 0 if self.spec.require is Require.ANY else satisfied == len(self.case_ids)

    @property
    def satisfied_ids(self) -> list[str]:
        return [cid for cid in self.case_ids if cid in self.state.satisfied]

    def result(self) -> WatchResult:
        satisfied = self.satisfied_ids
        payments = {cid: self.state.satisfied[cid] for cid in satisfied} if self.spec.uses_payments else {}
        cases = [wire(self._latest[cid]) for cid in self.case_ids if cid in self._latest]
        return WatchResult(cases=cases, payments=payments, satisfied=satisfied)

    def _memo(self, cid: str, case: Case) -> CaseMemo:
        before = self.state.cases.get(cid)
        start = before.start_lifecycle if before is not None else case.lifecycle
        return CaseMemo(start, case.lifecycle, case.remainder, paid_off(case))

    def _reached(self, case: Case, memo: CaseMemo) -> bool:
        spec = self.spec
        if spec.condition is Condition.REMAINDER_AT_MOST:
            return spec.remainder_at_most is not None and case.remainder <= spec.remainder_at_most + CENT
        if spec.condition is Condition.LIFECYCLE_IN:
            return case.lifecycle_state in spec.lifecycles
        if spec.condition is Condition.LIFECYCLE_CHANGED:
            return case.lifecycle != memo.start_lifecycle
        return False

    def _needs_payments(self, cid: str, case: Case, memo: CaseMemo, reached: list[str]) -> bool:
        if cid in self.state.satisfied:
            return False
        if self.spec.condition is Condition.REMAINDER_AT_MOST:
            return cid in reached
        if self.spec.condition is not Condition.NEW_PAYMENT:
            return False
        before = self.state.cases.get(cid)
        if before is None:
            return memo.paid_off > CENT
        return (
            abs(memo.paid_off - before.paid_off) > CENT
            or abs(memo.remainder - before.remainder) > CENT
            or memo.lifecycle != before.lifecycle
        )


def list_calls(case_ids: Sequence[str], chunk_size: int = endpoints.MAX_PAGE_SIZE) -> list[Call[CasePage]]:
    """``ceil(N / chunk_size)`` list requests covering the ids; a smaller chunk keeps URLs short."""
    if not 1 <= chunk_size <= endpoints.MAX_PAGE_SIZE:
        raise RequestValidationError("watch", {"chunk_size": [f"must be 1 to {endpoints.MAX_PAGE_SIZE}"]})
    return [
        endpoints.list_managed_cases(ids=chunk, page_size=len(chunk))
        for chunk in (case_ids[i : i + chunk_size] for i in range(0, len(case_ids), chunk_size))
    ]


def index_pages(pages: Iterable[CasePage]) -> dict[str, Case]:
    return {str(case.id): case for page in pages for case in page.cases}


def poll(watch: CaseWatch, chunk_size: int = endpoints.MAX_PAGE_SIZE) -> Steps[WatchResult | None]:
    """One full cycle for a single watcher: list the cases in chunks, then evaluate."""
    pages = yield list_calls(watch.case_ids, chunk_size)
    return (yield from watch.cycle(index_pages(pages)))


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
    """Polls the union of its subscribers' cases: ``ceil(total / chunk)`` list requests per cycle.

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
                pages = await asyncio.gather(*(client.send(call) for call in list_calls(ids, chunk)))
            except DebituraError as exc:
                failures += 1
                log.warning("Listing %d watched cases failed (%d in a row): %s", len(ids), failures, exc)
                for s in subscribers:
                    s._fail(exc)
                continue
            failures = 0
            snapshots = index_pages(pages)
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
