"""The incremental portfolio scan: what changed on any of this partner's cases since the last look.

``GET /managed-cases?Sort=DateUpdated:desc`` lists the newest change first, and Debitura bumps a
case's ``dateUpdated`` on every change. A cycle reads pages from the newest until it passes the
cursor left by the previous cycle (the newest ``dateUpdated`` it saw, and the ids seen at that
instant) minus an overlap, so while fewer than a page of cases changed a cycle costs one request,
whatever the size of the portfolio. Payments are read only for the cases whose money moved.

Why nothing is lost or reported twice:

- Every time compared is the server's (``dateUpdated``, ``dateCreated``); our clock only measures
  how long ago the cursor moved, and reads an explicit ``start``. After the cursor moved, cycles
  re-read the last ``overlap`` seconds before it (for a change committed late with an earlier
  timestamp) until one has done so more than ``overlap`` seconds later; from then on only the
  cursor's own instant (cases sharing one ``dateUpdated``), so a quiet portfolio costs one request
  a cycle even after a burst. What was
  already handled is recognised by its ``dateUpdated`` in the per-case marks and skipped, so a tie
  split across two cycles, or a change read twice, is reported once.
- A case updated while the pages are read moves to the top: the pages below shift down by one
  (a case read twice is counted once), and the moved case is newer than the new cursor, so the next
  cycle reports it. A case disappearing from the listing (a deleted test case) would shift the pages
  up and hide one case: the cycle sees ``totalResults`` drop and reads again from the first page.
- The state is advanced only when a cycle completed, payments included, so a failed cycle is
  repeated, not skipped; it is JSON-safe (:meth:`ScanState.to_json`) and can be stored anywhere.

The first cycle sets a baseline (marks what it sees, reports nothing) unless ``start`` is given;
then every change after ``start`` is reported. A case first seen after the baseline is compared
with the baseline instant: payments created after it are new. What the scan cannot see: a payment
deleted and another of the same amount recorded between two cycles; a payment deleted on a case
never seen since the baseline (its id was never known; it is reported as a ``case.updated`` with
the new remainder); a lifecycle that changed and changed back between two cycles.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

from debitura_provider.api import endpoints
from debitura_provider.api._call import Call
from debitura_provider.api.errors import RequestValidationError
from debitura_provider.api.models import Case, CasePage, Lifecycle, Payment
from debitura_provider.api.money import minor_digits, to_minor
from debitura_provider.api.watch.cycle import CaseWatch, Steps
from debitura_provider.api.watch.state import WatchResult

SORT = "DateUpdated:desc"
DEFAULT_OVERLAP = timedelta(seconds=5)
MAX_RESTARTS = 3
"""Times a cycle reads again from the first page when the listing shrank under it, before giving up."""

EVENT_NAMESPACE = uuid.UUID("5b1f6f0e-4d0a-4c8e-9a57-6d6562697475")
"""Namespace of the scan's event ids (uuid5): the same change always gets the same id."""

ChangeKind = Literal["payment.created", "payment.edited", "payment.deleted", "case.updated", "case.closed"]
EventType = Literal["payment.created", "payment.deleted", "case.updated", "case.closed"]
PAYMENT_EVENTS: tuple[EventType, ...] = ("payment.created", "payment.deleted")
CASE_EVENTS: tuple[EventType, ...] = ("case.updated", "case.closed")
EVENT_TYPES: tuple[EventType, ...] = PAYMENT_EVENTS + CASE_EVENTS


def updated_at(case: Case) -> datetime:
    """The case's position in the listing: ``dateUpdated``, or ``dateCreated`` if never updated."""
    when = case.date_updated or case.date_created
    if when is None:
        raise RequestValidationError(
            "scan", {"dateUpdated": [f"case {case.id} has neither dateUpdated nor dateCreated"]}
        )
    return when


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def amount_text(value: Decimal, currency: str | None) -> str:
    """An amount as an exact JSON string with the currency's decimals: ``"1234.50"``, ``"1200"`` (JPY)."""
    return str(Decimal(to_minor(value, currency)).scaleb(-minor_digits(currency)))


def _paid_off(case: Case) -> int:
    """Minor units payments took off the case (:attr:`Case.paid_off`)."""
    return to_minor(case.paid_off, case.currency)


def _is_closed(case: Case) -> bool:
    return case.lifecycle_state is Lifecycle.CLOSED


@dataclass
class CaseMark:
    """A case as the scan last handled it: enough to tell what moved, and the payments it knows."""

    updated: str
    lifecycle: str | None
    paid_off: int
    remainder: int
    payments: dict[str, int] | None = None
    """Payment id -> amount in minor units; None until the case's payments were first read."""

    def to_json(self) -> list[Any]:
        return [self.updated, self.lifecycle, self.paid_off, self.remainder, self.payments]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> CaseMark:
        updated, lifecycle, paid, remainder, payments = data
        known = None if payments is None else {str(k): int(v) for k, v in payments.items()}
        return cls(str(updated), lifecycle, int(paid), int(remainder), known)


@dataclass
class ScanState:
    """What the scan has learnt, JSON-safe: the cursor, the baseline instant and a mark per case seen."""

    cursor: str | None = None
    """The newest ``dateUpdated`` seen (server time); None before the first cycle."""
    cursor_ids: list[str] = field(default_factory=list)
    """The cases seen at exactly that instant."""
    cursor_read_at: float | None = None
    """Our clock (``time.time()``) when the cursor last moved."""
    settled: bool = False
    """Whether a cycle re-read the overlap more than ``overlap`` seconds after the cursor moved."""
    since: str | None = None
    """Changes after this instant are new on a case seen for the first time (baseline or ``start``)."""
    cases: dict[str, CaseMark] = field(default_factory=dict)
    started: bool = False
    """Whether a cycle completed (the baseline is set even when the portfolio was empty)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "cursor": self.cursor,
            "cursorIds": self.cursor_ids,
            "cursorReadAt": self.cursor_read_at,
            "settled": self.settled,
            "since": self.since,
            "cases": {cid: mark.to_json() for cid, mark in self.cases.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ScanState:
        if not data:
            return cls()
        return cls(
            cursor=data.get("cursor"),
            cursor_ids=[str(i) for i in data.get("cursorIds", ())],
            cursor_read_at=data.get("cursorReadAt"),
            settled=bool(data.get("settled", False)),
            since=data.get("since"),
            cases={str(cid): CaseMark.from_json(m) for cid, m in data.get("cases", {}).items()},
            started=bool(data.get("started", data.get("cursor") is not None)),
        )


@dataclass(frozen=True)
class Change:
    """One thing that happened on a case, as the scan saw it."""

    kind: ChangeKind
    case: Case
    at: datetime
    """When it happened, server time: the payment's ``dateCreated``, else the case's ``dateUpdated``."""
    payment: Payment | None = None
    previous_amount: int | None = None
    """For an edit: the amount before, in minor units."""
    old_lifecycle: str | None = None

    @property
    def case_id(self) -> str:
        return str(self.case.id)

    @property
    def event_type(self) -> EventType:
        """The webhook event type: an edit is delivered as a ``payment.created`` with ``previousAmount``."""
        return "payment.created" if self.kind == "payment.edited" else self.kind

    @property
    def identity(self) -> str:
        """What makes two sightings the same change (the event id is derived from it)."""
        if self.payment is not None:
            base = f"{self.kind}/{self.case_id}/{self.payment.id}"
            if self.kind == "payment.edited":
                base += f"/{to_minor(self.payment.gross_amount, self.case.currency)}"
            return base
        return f"{self.kind}/{self.case_id}/{self.old_lifecycle}/{self.case.lifecycle}/{_iso(self.at)}"

    def envelope(self) -> dict[str, Any]:
        """The event as the webhook receiver records it: ``{"id", "type", "createdAt", "data"}``.

        Ids and amounts only, never the debtor: ``data`` has ``caseId``, ``reference``,
        ``lifecycle``, ``classification``, ``remainder`` and ``currency``; payment events add
        ``paymentId``, ``amount`` and ``date``; ``case.updated`` adds ``oldLifecycle``/``newLifecycle``;
        ``case.closed`` adds ``closeCode``. Amounts are exact strings.
        """
        case, currency = self.case, self.case.currency
        data: dict[str, Any] = {
            "caseId": self.case_id,
            "reference": case.reference,
            "lifecycle": case.lifecycle,
            "classification": "test" if case.is_test_case else "production",
            "currency": currency,
            "remainder": amount_text(case.remainder, currency),
        }
        if self.payment is not None:
            data["paymentId"] = str(self.payment.id)
            data["amount"] = amount_text(self.payment.gross_amount, currency)
            data["date"] = self.payment.date.date().isoformat() if self.payment.date else None
            if self.previous_amount is not None:
                data["previousAmount"] = str(Decimal(self.previous_amount).scaleb(-minor_digits(currency)))
        elif self.kind == "case.updated":
            data["oldLifecycle"] = self.old_lifecycle
            data["newLifecycle"] = case.lifecycle
        else:
            data["closeCode"] = case.close_code
        return {
            "id": str(uuid.uuid5(EVENT_NAMESPACE, self.identity)),
            "type": self.event_type,
            "createdAt": _iso(self.at),
            "data": data,
        }


@dataclass(frozen=True)
class ScanResult:
    """One cycle: the changes in the order they happened, the changed cases, and what it cost."""

    changes: list[Change]
    cases: list[Case]
    list_requests: int
    payment_requests: int
    baseline: bool = False


class PortfolioScan:
    """The sans-I/O scan: :meth:`cycle` yields the calls it needs and returns a :class:`ScanResult`.

    :param state: where the previous cycle left off (:meth:`ScanState.from_json`).
    :param start: report every change after this instant instead of setting a silent baseline.
    :param overlap: how far before the cursor each cycle re-reads (late commits, equal timestamps).
    :param payments: read payments of cases whose money moved; off, only lifecycle changes are reported.
    :param page_size: cases per list request (1 to 100).
    :param clock: our clock, seconds (``time.time``); only durations are taken from it.
    """

    def __init__(
        self,
        state: ScanState | None = None,
        *,
        start: datetime | None = None,
        overlap: timedelta = DEFAULT_OVERLAP,
        payments: bool = True,
        page_size: int = endpoints.MAX_PAGE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= page_size <= endpoints.MAX_PAGE_SIZE:
            raise RequestValidationError("scan", {"page_size": [f"must be 1 to {endpoints.MAX_PAGE_SIZE}"]})
        if overlap < timedelta(0):
            raise RequestValidationError("scan", {"overlap": ["must be 0 or more"]})
        if start is not None and start.tzinfo is None:
            raise RequestValidationError("scan", {"start": ["give a timezone-aware time (UTC)"]})
        self.state = state or ScanState()
        self.start = start
        self.overlap = overlap
        self.payments = payments
        self.page_size = page_size
        self.clock = clock

    def _page(self, page: int) -> Call[CasePage]:
        return endpoints.list_managed_cases(page=page, page_size=self.page_size, sort=SORT)

    def read_changed(self, baseline: bool) -> Steps[tuple[list[Case], int, datetime | None]]:
        """Page from the newest until past the cursor; returns the cases changed, requests sent, floor.

        Without a cursor, the baseline reads the overlap below the newest change; after a baseline of
        an empty portfolio every case is new, so every page is read.
        """
        state = self.state
        floor: datetime | None = None
        if state.cursor is not None:
            floor = _parse(state.cursor) - (timedelta(0) if state.settled else self.overlap)
        elif self.start is not None:
            floor = self.start - self.overlap
        seen: dict[str, Case] = {}
        page, total, restarts, requests = 1, None, 0, 0
        while True:
            (result,) = yield [self._page(page)]
            requests += 1
            if total is not None and result.page.total_results < total and restarts < MAX_RESTARTS:
                restarts, page, total = restarts + 1, 1, None  # the listing shrank: pages shifted up
                continue
            total = result.page.total_results
            for case in result.cases:
                seen.setdefault(str(case.id), case)  # the first sighting is the newest
            if not result.cases:
                break
            if floor is None and baseline:
                floor = updated_at(result.cases[0]) - self.overlap
            if len(result.cases) < self.page_size or page >= result.page.total_pages:
                break
            if floor is not None and updated_at(result.cases[-1]) < floor:
                break
            page += 1
        changed = [
            case
            for cid, case in seen.items()
            if floor is None or updated_at(case) >= floor
            if (mark := state.cases.get(cid)) is None or mark.updated != _iso(updated_at(case))
        ]
        return changed, requests, floor

    def cycle(self) -> Steps[ScanResult]:
        """One cycle: list what changed, read payments where money moved, report, advance the state."""
        state = self.state
        baseline = not state.started and self.start is None
        late = state.cursor_read_at is not None and self.clock() - state.cursor_read_at > self.overlap.total_seconds()
        changed, list_requests, floor = yield from self.read_changed(baseline)
        since = state.since or (_iso(floor) if floor is not None else None)
        fetch: list[str] = []
        if self.payments and not baseline:
            for case in changed:
                mark = state.cases.get(str(case.id))
                paid = _paid_off(case)
                if (mark is None and paid > 0) or (mark is not None and mark.paid_off != paid):
                    fetch.append(str(case.id))
        found: dict[str, list[Payment]] = {}
        if fetch:
            lists = yield [endpoints.get_managed_case_payments(cid) for cid in fetch]
            found = dict(zip(fetch, lists, strict=True))
        changes: list[Change] = []
        for case in changed:
            cid = str(case.id)
            mark = state.cases.get(cid)
            new_mark = self._mark(case, mark)
            if not baseline:
                first = mark.updated if mark is not None else since
                threshold = _parse(first) if first is not None else None
                changes += self._diff(case, mark, new_mark, found.get(cid), threshold)
            if cid in found:
                new_mark.payments = {str(p.id): to_minor(p.gross_amount, case.currency) for p in found[cid]}
            state.cases[cid] = new_mark
        if changed:
            newest = max(updated_at(c) for c in changed)
            if state.cursor is None or newest >= _parse(state.cursor):
                ids = [str(c.id) for c in changed if updated_at(c) == newest]
                if state.cursor is not None and _parse(state.cursor) == newest:
                    ids = list(dict.fromkeys([*state.cursor_ids, *ids]))
                if state.cursor is None or newest > _parse(state.cursor):
                    state.cursor_read_at, state.settled, late = self.clock(), False, False
                state.cursor, state.cursor_ids = _iso(newest), ids
        state.settled = state.settled or late
        if state.since is None:
            state.since = since
        state.started = True
        changes.sort(key=lambda c: (c.at, _ORDER[c.kind]))
        return ScanResult(changes, changed, list_requests, len(fetch), baseline)

    def _mark(self, case: Case, before: CaseMark | None) -> CaseMark:
        currency = case.currency
        return CaseMark(
            updated=_iso(updated_at(case)),
            lifecycle=case.lifecycle,
            paid_off=_paid_off(case),
            remainder=to_minor(case.remainder, currency),
            payments=before.payments if before is not None else None,
        )

    def _diff(
        self,
        case: Case,
        mark: CaseMark | None,
        new: CaseMark,
        payments: list[Payment] | None,
        threshold: datetime | None,
    ) -> list[Change]:
        at = updated_at(case)
        currency = case.currency
        out: list[Change] = []
        payment_seen = False
        if payments is not None:
            known = mark.payments if mark is not None else None
            live = {str(p.id): p for p in payments}
            for pid, p in live.items():
                amount = to_minor(p.gross_amount, currency)
                if known is None:
                    if threshold is None or (p.date_created or at) > threshold:
                        out.append(Change("payment.created", case, p.date_created or at, p))
                elif pid not in known:
                    out.append(Change("payment.created", case, p.date_created or at, p))
                elif known[pid] != amount:
                    out.append(Change("payment.edited", case, p.date_updated or at, p, previous_amount=known[pid]))
            for pid, amount in (known or {}).items():
                if pid not in live:
                    gone = Payment(id=uuid.UUID(pid), gross_amount=Decimal(amount).scaleb(-minor_digits(currency)))
                    out.append(Change("payment.deleted", case, at, gone))
            payment_seen = bool(out)
        old_lifecycle = mark.lifecycle if mark is not None else None
        if mark is None and _is_closed(case) and threshold and (case.date_finished or at) <= threshold:
            pass  # closed before the baseline, seen now for another change: not a new close
        elif mark is None and payment_seen and case.lifecycle_state is Lifecycle.ACTIVE:
            pass  # first sight, explained by its payments
        elif mark is None or old_lifecycle != case.lifecycle:
            if _is_closed(case):
                out.append(Change("case.closed", case, case.date_finished or at, old_lifecycle=old_lifecycle))
            else:
                out.append(Change("case.updated", case, at, old_lifecycle=old_lifecycle))
        elif not payment_seen and (mark.remainder != new.remainder or mark.paid_off != new.paid_off):
            out.append(Change("case.updated", case, at, old_lifecycle=old_lifecycle))
        return out


_ORDER: dict[str, int] = {
    "payment.deleted": 0,
    "payment.created": 1,
    "payment.edited": 2,
    "case.updated": 3,
    "case.closed": 4,
}
"""Within one instant: payments before the lifecycle they caused (a settling payment, then the close)."""


SCAN_THRESHOLD = 3 * endpoints.MAX_PAGE_SIZE
"""From how many watched cases :class:`WatchedListing` scans instead of listing every chunk."""


class WatchedListing:
    """Current snapshots of a watched set at about one request per cycle, however large it is.

    Below ``threshold`` cases each cycle lists them by ``Ids`` (``ceil(N / 100)`` requests). From
    there, a scan cycle (no payments: the watch reads those) finds what changed anywhere in the
    portfolio; changed watched cases replace their cached snapshot, and only cases not cached yet
    (the first cycle, a new subscriber) are listed by ``Ids``. The scan runs before those ``Ids``
    reads, so a change made in between is newer than the cursor and comes with the next cycle.
    """

    def __init__(self, threshold: int = SCAN_THRESHOLD, *, overlap: timedelta = DEFAULT_OVERLAP) -> None:
        self.threshold = threshold
        self.overlap = overlap
        self._scan: PortfolioScan | None = None
        self._cache: dict[str, Case] = {}

    def snapshots(self, case_ids: Sequence[str], chunk_size: int = endpoints.MAX_PAGE_SIZE) -> Steps[dict[str, Case]]:
        """One cycle: the latest snapshot of every watched case the listing returns, keyed by id."""
        ids = list(dict.fromkeys(case_ids))
        if len(ids) < self.threshold:
            self._scan, self._cache = None, {}
            pages = yield endpoints.list_managed_cases_by_id(ids, chunk_size=chunk_size)
            return endpoints.cases_by_id(pages)
        if self._scan is None:
            self._scan = PortfolioScan(payments=False, overlap=self.overlap)
        result = yield from self._scan.cycle()  # advances only once complete
        wanted = set(ids)
        cache = self._cache = {cid: case for cid, case in self._cache.items() if cid in wanted}
        cache.update((str(c.id), c) for c in result.cases if str(c.id) in wanted)
        missing = [cid for cid in ids if cid not in cache]
        if missing:  # a failure here leaves them missing: the next cycle lists them again
            pages = yield endpoints.list_managed_cases_by_id(missing, chunk_size=chunk_size)
            cache.update(endpoints.cases_by_id(pages))
        return {cid: cache[cid] for cid in ids if cid in cache}

    def poll(self, watch: CaseWatch, chunk_size: int = endpoints.MAX_PAGE_SIZE) -> Steps[WatchResult | None]:
        """:func:`~debitura_provider.api.watch.cycle.poll` through this listing (the sensor's poke)."""
        snapshots = yield from self.snapshots(watch.case_ids, chunk_size)
        return (yield from watch.cycle(snapshots))


def events_of(result: ScanResult, types: Iterable[str] = EVENT_TYPES) -> list[dict[str, Any]]:
    """The cycle's changes as event envelopes of the given types, in the order they happened."""
    wanted = set(types)
    return [env for change in result.changes if (env := change.envelope())["type"] in wanted]


def normalize_event(extra: Mapping[str, Any]) -> dict[str, Any]:
    """An asset event's ``extra`` from either source as ``{"id", "type", "createdAt", "data"}``.

    The scan records that form; a webhook delivery recorded as delivered carries ``event`` and
    ``timestamp`` instead, and Airflow wraps a trigger's payload as ``{"from_trigger", "payload"}``.
    Consumers read all three through this one function.
    """
    if extra.get("from_trigger") and isinstance(extra.get("payload"), Mapping):
        extra = extra["payload"]
    return {
        "id": str(extra.get("id", "")),
        "type": str(extra.get("type") or extra.get("event") or ""),
        "createdAt": extra.get("createdAt") or extra.get("timestamp"),
        "data": dict(extra.get("data") or {}),
    }
