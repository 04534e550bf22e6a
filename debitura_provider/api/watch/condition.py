"""What a watch waits for: the condition, checked once, before anything is polled."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from debitura_provider.api._call import uuid_arg
from debitura_provider.api.errors import RequestValidationError
from debitura_provider.api.models import Lifecycle


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
                states = tuple(
                    dict.fromkeys(s if isinstance(s, Lifecycle) else Lifecycle.parse(s) for s in lifecycles or ())
                )
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


def normalize_case_ids(case_ids: str | Iterable[str]) -> list[str]:
    """One id or several, as canonical UUID strings, duplicates dropped; refused with the field named."""
    raw = [case_ids] if isinstance(case_ids, str) else list(case_ids)
    if not raw:
        raise RequestValidationError("watch", {"case_ids": ["give at least one case id"]})
    return list(dict.fromkeys(str(uuid_arg(str(i), "case_ids")) for i in raw))
