"""What a watch waits for: the condition, checked once, before anything is polled."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
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
    remainder_at_most: Decimal | None = None
    lifecycles: tuple[Lifecycle, ...] = ()
    require: Require = Require.ALL

    @classmethod
    def build(
        cls,
        condition: str,
        *,
        remainder_at_most: Decimal | int | str | float | None = None,
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
        threshold: Decimal | None = None
        if chosen is Condition.REMAINDER_AT_MOST:
            threshold = _amount(remainder_at_most)
            if threshold is None or not threshold.is_finite() or threshold < 0:
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
            "remainder_at_most": None if self.remainder_at_most is None else format(self.remainder_at_most, "f"),
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


def _amount(value: Decimal | int | str | float | None) -> Decimal | None:
    # A rendered template gives a string, Python code a number; a float is read at its shortest text.
    if value is None or isinstance(value, bool):
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, TypeError, ValueError):
        return None
