"""What a watch has learnt, JSON-safe, so it survives a reschedule or a triggerer restart.

Amounts are saved as decimal strings (``"1234.50"``), so a restored state compares exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass
class CaseMemo:
    """What a case looked like at the last completed cycle, and its lifecycle at the start."""

    start_lifecycle: str | None
    lifecycle: str | None
    remainder: Decimal
    paid_off: Decimal

    def to_json(self) -> dict[str, Any]:
        return {
            "startLifecycle": self.start_lifecycle,
            "lifecycle": self.lifecycle,
            "remainder": format(self.remainder, "f"),
            "paidOff": format(self.paid_off, "f"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseMemo:
        return cls(
            data.get("startLifecycle"), data.get("lifecycle"), _decimal(data["remainder"]), _decimal(data["paidOff"])
        )


def _decimal(value: str | int | float) -> Decimal:
    # Amounts are saved as decimal strings; a state saved by an earlier version holds floats.
    return Decimal(repr(value) if isinstance(value, float) else value)


@dataclass
class WatchState:
    """Everything a watch has learnt.

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
