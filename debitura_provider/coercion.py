"""Reading rendered template values and connection extras: one rule per type, one truth table.

Jinja renders to text unless a DAG sets ``render_template_as_native_obj``, and connection extras
are whatever a person typed into a form or a JSON blob, so ``"False"``, ``"30"``, ``"12.50"`` and
``"['a', 'b']"`` arrive where a bool, a number, an amount or a list was meant. Every such value of
the provider goes through these functions. A value they cannot read raises
:class:`~debitura_provider.api.errors.ConfigurationError` naming the field, before any request is sent.

Truth table (case and surrounding spaces ignored): ``true 1 yes on`` (and ``True``, ``1``) are
true, ``false 0 no off`` (and ``False``, ``0``) are false; anything else is an error.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from debitura_provider.api.errors import ConfigurationError

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})


def _bad(field: str, value: Any, expected: str) -> ConfigurationError:
    return ConfigurationError(f"{field}: {value!r} is not {expected}")


def as_bool(value: Any, field: str) -> bool:
    """``True``/``False``, ``1``/``0`` or a word of the truth table."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE:
            return True
        if word in FALSE:
            return False
    raise _bad(field, value, "a boolean (true/1/yes/on or false/0/no/off)")


def as_int(value: Any, field: str) -> int:
    """An integer, a whole float, or its text (``"30"``)."""
    if isinstance(value, bool):
        raise _bad(field, value, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _bad(field, value, "an integer")


def as_float(value: Any, field: str) -> float:
    """A finite number or its text (``"2.5"``)."""
    if not isinstance(value, bool) and isinstance(value, int | float | Decimal | str):
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    raise _bad(field, value, "a number")


def as_amount(value: Any, field: str) -> Decimal:
    """A finite money amount as ``Decimal``; a float is read by its shortest repr (``12.1`` -> ``Decimal("12.1")``)."""
    if not isinstance(value, bool) and isinstance(value, int | float | Decimal | str):
        text = value.strip() if isinstance(value, str) else repr(value) if isinstance(value, float) else value
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = Decimal("NaN")
        if amount.is_finite():
            return amount
    raise _bad(field, value, "an amount")


def as_utc(value: Any, field: str) -> datetime | None:
    """A point in time as an aware UTC-or-offset datetime; naive values and plain dates are read as UTC.

    ``None``, ``""`` and ``"None"`` mean no value: ``"None"`` is what ``{{ ... }}`` renders for None
    without native rendering.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _bad(field, value, "an ISO date or timestamp") from None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise _bad(field, value, "an ISO date or timestamp")


def as_id_list(value: Any, field: str) -> list[str]:
    """Ids as given or as rendered: one id, a list or tuple of ids, or such a list rendered to text
    (``"['a', 'b']"`` or JSON ``'["a", "b"]'``); read as a Python literal, never evaluated."""
    if isinstance(value, str) and value.strip().startswith(("[", "(")):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise _bad(field, value, "a list of ids") from None
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | dict):
        items = list(value)
        ids = [str(item).strip() for item in items if isinstance(item, str | int) and not isinstance(item, bool)]
        if items and len(ids) == len(items) and all(ids):
            return ids
    raise _bad(field, value, "an id or a list of ids")
