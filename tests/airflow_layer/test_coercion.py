"""debitura_provider.coercion: rendered template values, one truth table, errors that name the field."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from debitura_provider.api.errors import ConfigurationError
from debitura_provider.coercion import as_amount, as_bool, as_float, as_id_list, as_int, as_utc


@pytest.mark.parametrize("value", [True, 1, "true", " TRUE ", "1", "yes", "Yes", "on"])
def test_true(value: Any) -> None:
    assert as_bool(value, "flag") is True


@pytest.mark.parametrize("value", [False, 0, "false", "False", "0", "no", " off "])
def test_false(value: Any) -> None:
    assert as_bool(value, "flag") is False


@pytest.mark.parametrize("value", ["maybe", "", "2", 2, None, "none", 0.5, []])
def test_anything_else_is_not_a_boolean(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^close_case: .* is not a boolean"):
        as_bool(value, "close_case")


def test_numbers() -> None:
    assert [as_int(v, "n") for v in (3, "3", " 30 ", 4.0)] == [3, 3, 30, 4]
    assert [as_float(v, "n") for v in (3, "2.5", 1.5, Decimal("0.1"))] == [3.0, 2.5, 1.5, 0.1]
    for bad in ("2.5", True, "x", None, 2.5):
        with pytest.raises(ConfigurationError, match=r"^n: .* is not an integer"):
            as_int(bad, "n")
    for bad in ("nan", "inf", False, "soon", None):
        with pytest.raises(ConfigurationError, match=r"^n: .* is not a number"):
            as_float(bad, "n")


def test_amounts_are_exact_decimals() -> None:
    assert as_amount("12.50", "amount") == Decimal("12.50")
    assert str(as_amount(0.1, "amount")) == "0.1"  # the float's shortest repr, not its binary expansion
    assert as_amount(25, "amount") == Decimal(25)
    for bad in ("12,50", "NaN", "Infinity", True, None, "ten"):
        with pytest.raises(ConfigurationError, match=r"^amount: .* is not an amount"):
            as_amount(bad, "amount")


def test_timestamps_are_aware() -> None:
    assert as_utc("2026-01-20", "since") == datetime(2026, 1, 20, tzinfo=timezone.utc)
    assert as_utc("2026-01-20T10:00:00Z", "since") == datetime(2026, 1, 20, 10, tzinfo=timezone.utc)
    assert as_utc("2026-01-20T10:00:00+02:00", "since").utcoffset() == timedelta(hours=2)  # type: ignore[union-attr]
    assert as_utc(date(2026, 1, 20), "since") == datetime(2026, 1, 20, tzinfo=timezone.utc)
    assert as_utc(datetime(2026, 1, 20, 10), "since") == datetime(2026, 1, 20, 10, tzinfo=timezone.utc)
    assert [as_utc(v, "since") for v in (None, "", "None")] == [None, None, None]
    with pytest.raises(ConfigurationError, match=r"^since: 'last week' is not an ISO date"):
        as_utc("last week", "since")


def test_id_lists_as_given_or_rendered() -> None:
    assert as_id_list("a", "case_ids") == ["a"]
    assert as_id_list(["a", "b"], "case_ids") == ["a", "b"]
    assert as_id_list("['a', 'b']", "case_ids") == ["a", "b"]
    assert as_id_list('["a", "b"]', "case_ids") == ["a", "b"]
    assert as_id_list(("a",), "case_ids") == ["a"]
    for bad in ("[", "[__import__('os')]", [], [""], [{"id": 1}], {"a": 1}, None, "['a', None]"):
        with pytest.raises(ConfigurationError, match=r"^case_ids: "):
            as_id_list(bad, "case_ids")
