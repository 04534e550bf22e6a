"""Reading the collection-partner operators' rendered inputs: each refusal names the field, before anything is sent.

Values come from templates (text unless the DAG renders native objects) and go through
:mod:`debitura_provider.coercion`; bodies through the API's request models. Unset (``None``, ``""``,
or ``"None"`` as a template renders None) means the optional field is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from debitura_provider.api import DebituraError, RequestValidationError
from debitura_provider.api._call import parse_model
from debitura_provider.coercion import as_amount, as_bool
from debitura_provider.compat import AirflowFailException

T = TypeVar("T")


def unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "None"))


def read(fn: Callable[[Any, str], T], value: Any, field: str, what: str) -> T:
    """``fn(value, field)`` (a coercion), its refusal raised as a task failure without retry."""
    try:
        return fn(value, field)
    except DebituraError as exc:
        raise AirflowFailException(f"Invalid {what} (nothing was sent): {exc}") from None


def flag(value: Any, field: str, what: str) -> bool:
    """A flag; unset is false."""
    return False if unset(value) else read(as_bool, value, field, what)


def amount(value: Any, field: str, what: str, *, default: Decimal | None = None) -> Decimal | None:
    """An amount; unset gives ``default``."""
    return default if unset(value) else read(as_amount, value, field, what)


def validated(model: Any, body: Mapping[str, Any], what: str) -> Any:
    """The request model of ``body`` (unset fields left out), or a task failure naming the fields."""
    try:
        return parse_model(model, {k: v for k, v in body.items() if v is not None}, what)
    except RequestValidationError as exc:
        raise AirflowFailException(str(exc)) from None


def money(value: Any) -> Decimal:
    """An amount of a response as ``Decimal`` (exact from its text when the model still holds a float)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))
