"""The sans-I/O watch cycle: it yields the calls it needs and decides from their results."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import Any, TypeVar

from debitura_provider.api import endpoints
from debitura_provider.api._call import Call
from debitura_provider.api.errors import CasesNotFound
from debitura_provider.api.models import Case, Payment, to_wire
from debitura_provider.api.money import same_amount, to_minor
from debitura_provider.api.personal_data import snapshot
from debitura_provider.api.watch.condition import Condition, Require, WatchSpec, normalize_case_ids
from debitura_provider.api.watch.state import CaseMemo, WatchResult, WatchState

R = TypeVar("R")

Steps = Generator[list[Call[Any]], list[Any], R]
"""A sans-I/O procedure: it yields the calls to send next and receives their results, in order."""


class CaseWatch:
    """Which cases, what to wait for, and what has been seen so far.

    Its result holds each case's :func:`~debitura_provider.api.personal_data.summary` (ids, client,
    money, lifecycle, dates: no debtor data); ``full_snapshots`` returns the whole case instead.
    """

    def __init__(
        self,
        case_ids: str | Iterable[str],
        spec: WatchSpec,
        state: WatchState | None = None,
        *,
        known_payment_ids: Iterable[str] = (),
        full_snapshots: bool = False,
    ) -> None:
        self.case_ids = normalize_case_ids(case_ids)
        self.spec = spec
        self.full_snapshots = full_snapshots
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
                    self.state.satisfied[cid] = [to_wire(p) for p in fresh]
            elif cid in reached:
                self.state.satisfied[cid] = [to_wire(p) for p in fresh] if self.spec.uses_payments else []
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
        cases = [snapshot(self._latest[cid], full=self.full_snapshots) for cid in self.case_ids if cid in self._latest]
        return WatchResult(cases=cases, payments=payments, satisfied=satisfied)

    def _memo(self, cid: str, case: Case) -> CaseMemo:
        before = self.state.cases.get(cid)
        start = before.start_lifecycle if before is not None else case.lifecycle
        return CaseMemo(start, case.lifecycle, case.remainder, case.paid_off)

    def _reached(self, case: Case, memo: CaseMemo) -> bool:
        spec = self.spec
        if spec.condition is Condition.REMAINDER_AT_MOST:
            threshold = spec.remainder_at_most
            return threshold is not None and to_minor(case.remainder, case.currency) <= to_minor(
                threshold, case.currency
            )
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
        currency = case.currency
        if before is None:
            return to_minor(memo.paid_off, currency) > 0
        return (
            not same_amount(memo.paid_off, before.paid_off, currency)
            or not same_amount(memo.remainder, before.remainder, currency)
            or memo.lifecycle != before.lifecycle
        )


def poll(watch: CaseWatch, chunk_size: int = endpoints.MAX_PAGE_SIZE) -> Steps[WatchResult | None]:
    """One full cycle for a single watcher: list the cases in chunks, then evaluate."""
    pages = yield endpoints.list_managed_cases_by_id(watch.case_ids, chunk_size=chunk_size)
    return (yield from watch.cycle(endpoints.cases_by_id(pages)))
