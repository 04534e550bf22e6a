"""The figures of the "Debitura" page: the referred portfolio, shared by all viewers, refreshed at most once a minute.

One refresh lists the managing partner's cases through the connection, ``GET /managed-cases`` at
100 cases a page (one list request per 100 cases), and keeps only their summaries
(:func:`~debitura_provider.api.personal_data.summary`: ids, reference, creditor, amounts,
lifecycle, dates, never the debtor). Recent payments come from the ``debitura_payments`` asset
events the receiver and the portfolio scan already recorded, and the receiver's health from its
inbox table and its own count of refused deliveries; neither costs a request to Debitura.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from debitura_provider.api.models import Case
from debitura_provider.api.models.enums import Lifecycle
from debitura_provider.api.personal_data import summary
from debitura_provider.api.ratelimit import RateLimits

REFRESH_SECONDS = 60.0
"""At most one refresh a minute per connection, however many people have the page open."""
NEEDS_AGENCY = (Lifecycle.NEEDS_ADDITIONAL_DETAILS.value, Lifecycle.PAUSED.value)
"""Lifecycles in which a case waits for the agency (besides closed without payment)."""
ZERO = Decimal(0)


@dataclass
class Totals:
    """Referred, collected and outstanding amounts of some cases in one currency."""

    cases: int = 0
    referred: Decimal = ZERO
    collected: Decimal = ZERO
    outstanding: Decimal = ZERO

    def add(self, case: dict[str, Any]) -> None:
        self.cases += 1
        self.referred += case["referred"]
        self.collected += case["collected"]
        self.outstanding += case["outstanding"]


@dataclass
class Portfolio:
    """One refresh: the case summaries (with their portal URLs), when they were read and what it cost."""

    conn_id: str
    fetched_at: datetime
    cases: list[dict[str, Any]]
    list_requests: int
    limits: RateLimits | None
    error: str | None = None

    def by_lifecycle(self) -> Counter[str]:
        return Counter(c["lifecycle"] or "unknown" for c in self.cases)

    def totals(self, key: Callable[[dict[str, Any]], str]) -> dict[tuple[str, str], Totals]:
        """Totals per ``(key(case), currency)``, sorted by key then currency."""
        out: dict[tuple[str, str], Totals] = {}
        for case in self.cases:
            out.setdefault((key(case), case["currency"]), Totals()).add(case)
        return dict(sorted(out.items()))

    def needing_agency(self) -> list[dict[str, Any]]:
        """More Info Required, Paused, and closed without any payment."""
        return [
            c
            for c in self.cases
            if c["lifecycle"] in NEEDS_AGENCY or (c["lifecycle"] == Lifecycle.CLOSED.value and c["collected"] <= 0)
        ]


def case_row(case: Case, portal_url: str) -> dict[str, Any]:
    """What the page keeps of a case: its summary's figures and the partner portal link."""
    kept = summary(case)
    creditor = kept.get("creditor") or {}
    return {
        "id": str(case.id),
        "reference": kept.get("reference") or "",
        "creditor": creditor.get("companyName") or creditor.get("id") or "unknown client",
        "currency": case.currency or "?",
        "referred": case.gross_amount,  # what the agency referred; fees Debitura added are collected on top
        "collected": case.paid_off,
        "outstanding": case.remainder,
        "lifecycle": case.lifecycle,
        "close_code": case.close_code,
        "month": case.date_created.strftime("%Y-%m") if case.date_created else "unknown",
        "updated": case.date_updated,
        "url": f"{portal_url.rstrip('/')}/cases/{case.id}",
    }


@dataclass
class RequestLog:
    """When this page's list requests were sent, to show its use of the key's rate budget."""

    sent: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))

    def record(self, count: int, now: float) -> None:
        self.sent.extend([now] * count)

    def within(self, seconds: float, now: float) -> int:
        return sum(1 for t in self.sent if now - t < seconds)


class PortfolioCache:
    """The last :class:`Portfolio` of each connection; a viewer after a minute starts one refresh, others wait for it.

    ``load(conn_id)`` returns the cases, the portal URL, how many list requests it sent and the key's limits.
    """

    def __init__(
        self,
        load: Callable[[str], tuple[list[Case], str, int, RateLimits]],
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Portfolio]] = {}
        self.requests: dict[str, RequestLog] = {}

    def get(self, conn_id: str) -> Portfolio:
        with self._lock:  # one refresh at a time; viewers arriving meanwhile get its result
            entry = self._entries.get(conn_id)
            now = self._clock()
            if entry is not None and now - entry[0] < self.refresh_seconds:
                return entry[1]
            portfolio = self._refresh(conn_id, entry[1] if entry else None)
            self._entries[conn_id] = (now, portfolio)
            return portfolio

    def _refresh(self, conn_id: str, previous: Portfolio | None) -> Portfolio:
        log = self.requests.setdefault(conn_id, RequestLog())
        try:
            cases, portal_url, sent, limits = self._load(conn_id)
        except Exception as exc:  # shown on the page with the last good figures; retried after a minute
            kept = previous.cases if previous else []
            at = previous.fetched_at if previous else _utcnow()
            return Portfolio(conn_id, at, kept, 0, previous.limits if previous else None, _describe(exc))
        log.record(sent, self._clock())
        return Portfolio(conn_id, _utcnow(), [case_row(case, portal_url) for case in cases], sent, limits)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _describe(exc: Exception) -> str:
    """An error as the page shows it: its class and message (the package's errors never hold the key)."""
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Rejection:
    at: datetime
    status: int
    reason: str


class ReceiverHealth:
    """Deliveries the receiver refused in this API server process: counts by reason and the latest few."""

    def __init__(self, keep: int = 20) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.latest: deque[Rejection] = deque(maxlen=keep)
        self.since = datetime.now(timezone.utc)

    def rejected(self, status: int, reason: str) -> None:
        with self._lock:
            self.counts[f"{status} {reason}"] += 1
            self.latest.appendleft(Rejection(datetime.now(timezone.utc), status, reason))


RECEIVER_HEALTH = ReceiverHealth()
"""Shared by the webhook endpoint (which records) and the page (which shows)."""
