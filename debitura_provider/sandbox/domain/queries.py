"""Which cases a caller may see, and the filtering, sorting and paging of case lists.

The HTTP edge parses ``Page``, ``Sort`` and the rest into a :class:`CaseQuery`; the rules that apply
it, and the scopes of ``/managed-cases`` and ``/cases``, live here so that the domain can use them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from debitura_provider.api.models import Lifecycle
from debitura_provider.sandbox.domain import money
from debitura_provider.sandbox.domain.problems import not_found
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.state import CaseRecord, Partner

HIDDEN_FROM_PARTNERS = (Lifecycle.PENDING_CONTRACT_SIGNING, Lifecycle.PENDING_VERIFICATION_INTERNAL)
"""Internal stages a collection partner never sees (spec, ``GET /cases``)."""


SORT_FIELDS: dict[str, Callable[[CaseRecord], Any]] = {
    "datecreated": lambda c: c.date_created,
    "dateupdated": lambda c: c.date_updated or c.date_created,
    "datefinished": lambda c: c.date_finished,
    "datecollectionstarted": lambda c: c.date_collection_started,
    "duedate": lambda c: c.due_date,
    "date": lambda c: c.date,
    "grossamount": lambda c: c.gross_amount,
    "remainder": money.remainder,
    "interestfees": lambda c: c.interest_fees,
    "collectionfees": lambda c: c.collection_fees,
    "reminderfees": lambda c: c.reminder_fees,
    "lifecycle": lambda c: c.lifecycle.value,
    "closecode": lambda c: c.close_label,
}


@dataclass
class CaseQuery:
    """``Page``, ``PageSize``, ``Statuses``, ``Ids``, ``DebtorIds``, ``DivisionIds``, ``Sort``, ``includeTestCases``.

    Names are case-insensitive; arrays may come as repeated keys, comma-separated, or with a ``[]`` suffix.
    """

    page: int = 1
    page_size: int = 10
    statuses: set[Lifecycle] = field(default_factory=set)
    ids: set[UUID] = field(default_factory=set)
    debtor_ids: set[UUID] = field(default_factory=set)
    division_ids: set[UUID] = field(default_factory=set)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    include_test_cases: bool = False

    def matches(self, case: CaseRecord) -> bool:
        return (
            (not self.statuses or case.lifecycle in self.statuses)
            and (not self.ids or case.id in self.ids)
            and (not self.debtor_ids or case.debtor_id in self.debtor_ids)
            and not self.division_ids  # managed cases have no creditor division
        )

    def ordered(self, cases: list[CaseRecord]) -> list[CaseRecord]:
        """Sorted by ``Sort`` (default: newest first); later keys break ties of earlier ones."""
        result = sorted(cases, key=lambda c: (c.date_created, c.reference), reverse=True)
        for name, descending in reversed(self.sort):
            key = SORT_FIELDS[name]
            present = [c for c in result if key(c) is not None]
            missing = [c for c in result if key(c) is None]
            result = sorted(present, key=key, reverse=descending) + missing
        return result

    def window(self, cases: list[CaseRecord]) -> list[CaseRecord]:
        start = (self.page - 1) * self.page_size
        return cases[start : start + self.page_size]


@dataclass(frozen=True)
class CaseScope:
    """Which cases one family of endpoints shows a caller, and how a miss is explained."""

    visible: Callable[[CaseRecord, Partner], bool]
    who: str

    def find(self, sb: Sandbox, caller: Partner, case_id: UUID) -> CaseRecord:
        """The case, or 404 when it does not exist or is not the caller's to see here."""
        case = sb.store.cases.get(case_id)
        if case is None or not self.visible(case, caller):
            raise not_found(f"Case {case_id} not found, deleted, or not {self.who}.")
        return case


def submitted_by(case: CaseRecord, caller: Partner) -> bool:
    """``/managed-cases``: cases the caller submitted."""
    return case.managing_partner_id == caller.id


def visible_to_partner(case: CaseRecord, caller: Partner) -> bool:
    """``/cases``: cases the caller collects, or its own test cases, once verification has cleared."""
    mine = case.collection_partner_id == caller.id or (case.is_test and case.managing_partner_id == caller.id)
    return mine and case.lifecycle not in HIDDEN_FROM_PARTNERS


MANAGED = CaseScope(submitted_by, "submitted by you as managing partner")
WORKED = CaseScope(visible_to_partner, "assigned to you as collection partner")
managed_case = MANAGED.find
worked_case = WORKED.find
