"""Exact money: amounts are Decimals from the JSON number's text to the body sent and the XCom dict."""

from __future__ import annotations

import json
import random
import types
import typing
import uuid
from decimal import Decimal
from typing import Any, get_args, get_origin

import httpx
import pydantic
import pytest
import respx

from debitura_provider.api import DebituraClient, RequestValidationError, endpoints, to_wire
from debitura_provider.api._call import Call, derive_idempotency_key
from debitura_provider.api.models import ApiModel, Case, Payment
from debitura_provider.api.money import as_text, minor_digits, same_amount, to_minor
from tests.api.conftest import BASE

CASE = str(uuid.UUID(int=7))


def test_an_amount_has_one_text_in_xcom_however_debitura_wrote_it() -> None:
    texts = {value: as_text(Decimal(value)) for value in ("512.5", "512.50", "1.2E+3", "1200", "0.1250", "-3.1", "0")}
    assert texts == {
        "512.5": "512.50",
        "512.50": "512.50",
        "1.2E+3": "1200.00",
        "1200": "1200.00",
        "0.1250": "0.125",
        "-3.1": "-3.10",
        "0": "0.00",
    }
    assert as_text(Decimal("79228162514264337593543950335")) == "79228162514264337593543950335.00"  # nothing rounds
    case = Case.model_validate_json(f'{{"id": "{CASE}", "remainder": 512.5, "grossAmount": 512.50}}')
    assert (to_wire(case)["remainder"], to_wire(case)["grossAmount"]) == ("512.50", "512.50")


def test_minor_units_follow_iso_4217() -> None:
    assert (minor_digits("EUR"), minor_digits("jpy"), minor_digits("KWD"), minor_digits(None)) == (2, 0, 3, 2)
    assert to_minor(Decimal("1234.50"), "EUR") == 123450
    assert to_minor(Decimal("1234.5"), "JPY") == 1234  # half to even
    assert to_minor(Decimal("1235.5"), "JPY") == 1236
    assert to_minor("0.125", "KWD") == 125
    assert same_amount(Decimal("12.5"), "12.50", "EUR")
    assert not same_amount(Decimal("12.50"), Decimal("12.51"), "EUR")


def test_a_float_is_refused_where_money_is_compared() -> None:
    with pytest.raises(TypeError, match="float"):
        to_minor(0.1, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bool"):
        to_minor(True, "EUR")


def test_amounts_are_read_from_the_json_text_not_through_a_float(client: DebituraClient) -> None:
    # 17 significant digits: a float would return 12345678901234.57 (and 0.1 + 0.2 would not be 0.3)
    body = (
        f'{{"id": "{CASE}", "grossAmount": 12345678901234.567, "remainder": 0.10, "totalAddedFees": 0.20,'
        ' "currency": "EUR", "lifecycle": "Active"}'
    )
    with respx.mock(base_url=BASE) as api:
        api.get(f"/managed-cases/{CASE}").respond(
            200, content=body.encode(), headers={"Content-Type": "application/json"}
        )
        case = client.get_managed_case(CASE)
    assert case.gross_amount == Decimal("12345678901234.567")
    assert case.remainder + case.total_added_fees == Decimal("0.30")
    wire = to_wire(case)
    assert (wire["grossAmount"], wire["remainder"], wire["totalAddedFees"]) == ("12345678901234.567", "0.10", "0.20")
    json.dumps(wire)  # JSON-safe for XCom


def test_a_body_carries_amounts_as_exact_json_numbers(client: DebituraClient) -> None:
    with respx.mock(base_url=BASE) as api:
        route = api.post(f"/managed-cases/{CASE}/payments").respond(200, json={"paymentAmount": 12.5})
        client.record_test_payment(CASE, {"date": "2026-01-05", "paymentAmount": Decimal("12345678901234.50")})
    sent = route.calls.last.request
    assert sent.headers["Content-Type"] == "application/json"
    assert b'"paymentAmount":12345678901234.50' in sent.content
    assert json.loads(sent.content, parse_float=Decimal)["paymentAmount"] == Decimal("12345678901234.50")


def test_true_and_amounts_beyond_dotnet_decimal_are_refused_before_sending() -> None:
    request = {"date": "2026-01-05", "paymentAmount": True}
    with pytest.raises(RequestValidationError, match="not true or false"):
        endpoints.record_test_payment(CASE, request)
    with pytest.raises(RequestValidationError, match="largest amount"):
        endpoints.record_test_payment(CASE, request | {"paymentAmount": "79228162514264337593543950336"})


def test_idempotency_keys_are_those_the_float_bodies_derived() -> None:
    # Amounts were floats before: json.dumps wrote 1200.0 and 12.5; the same body keeps its key.
    old = {"amountToRecover": 1200.0, "fee": 12.5, "name": "A"}
    new = {"amountToRecover": Decimal("1200.00"), "fee": Decimal("12.50"), "name": "A"}
    assert derive_idempotency_key("/managed-cases", new) == derive_idempotency_key("/managed-cases", old)


def test_a_thousand_random_cent_amounts_add_up_exactly_through_the_client(client: DebituraClient) -> None:
    rng = random.Random(11)
    cents = [rng.randrange(1, 10_000_000) for _ in range(1000)]
    texts = [f"{c // 100}.{c % 100:02d}" for c in cents]
    exact = Decimal(sum(cents)) / 100
    assert Decimal(repr(sum(float(t) for t in texts))) != exact  # floats would drift: this test can tell
    payments = ",".join(
        f'{{"id": "{uuid.UUID(int=i + 1)}", "grossAmount": {t}, "currency": "EUR"}}' for i, t in enumerate(texts)
    )
    with respx.mock(base_url=BASE) as api:
        api.get(f"/managed-cases/{CASE}/payments").respond(200, content=f"[{payments}]".encode())
        route = api.post(f"/managed-cases/{CASE}/payments").respond(200, json={})
        read = client.get_managed_case_payments(CASE)
        for payment in read:
            client.record_test_payment(CASE, {"date": "2026-01-05", "paymentAmount": payment.gross_amount})
    assert sum((p.gross_amount for p in read), Decimal(0)) == exact
    sent = [json.loads(call.request.content, parse_float=Decimal)["paymentAmount"] for call in route.calls]
    assert sum(sent, Decimal(0)) == exact
    assert sum((Decimal(to_wire(p)["grossAmount"]) for p in read), Decimal(0)) == exact


NOT_MONEY = {
    ("Case", "blended_age_uplift_points"),  # percentage points
    ("Case", "pre_legal_success_fee"),  # a percentage
    ("UpdateFeesResponse", "recalculated_success_fee"),  # a percentage
    ("PriceChangeConfirmation", "current_success_fee"),
    ("PriceChangeConfirmation", "proposed_success_fee"),
    ("Me", "pre_legal_revenue_share"),  # 0.40 for 40 %
    ("Me", "legal_revenue_share"),
}
"""The number fields that are not amounts: rates and percentages stay float."""


def _returned_models() -> set[type[ApiModel]]:
    """Every model a client method returns, and every model nested in one."""
    found: set[type[ApiModel]] = set()

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, ApiModel):
            if annotation not in found:
                found.add(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for arg in get_args(annotation):
            visit(arg)

    for name in dir(endpoints):
        function = getattr(endpoints, name)
        if isinstance(function, types.FunctionType) and function.__module__ == endpoints.__name__:
            returned = typing.get_type_hints(function).get("return")
            if get_origin(returned) is Call or (get_origin(returned) is list and get_args(returned)[0] is not Any):
                visit(returned)
    return found


def _numbers(annotation: Any) -> set[type]:
    if annotation in (float, Decimal, int):
        return {annotation}
    return set().union(*(_numbers(arg) for arg in get_args(annotation))) if get_args(annotation) else set()


def test_every_amount_a_client_method_returns_is_a_decimal() -> None:
    models = _returned_models()
    assert {Case, Payment} <= models
    floats = set()
    for model in models:
        for name, field in model.model_fields.items():
            kinds = _numbers(field.annotation)
            if float in kinds:
                floats.add((model.__name__, name))
    assert floats <= NOT_MONEY, f"amounts typed float: {sorted(floats - NOT_MONEY)}"
    amounts = {(m.__name__, n) for m in models for n, f in m.model_fields.items() if Decimal in _numbers(f.annotation)}
    assert {("Case", "remainder"), ("Payment", "gross_amount"), ("AllocationOutstanding", "principal")} <= amounts
    assert len(amounts) >= 25


def test_parsed_amounts_are_decimals_at_run_time(client: DebituraClient) -> None:
    body = {"id": CASE, "grossAmount": 100, "remainder": 99.99, "allocationOutstanding": {"principal": 1.5}}
    with respx.mock(base_url=BASE) as api:
        api.get(f"/managed-cases/{CASE}").respond(200, json=body)
        case = client.get_managed_case(CASE)
    values = [case.gross_amount, case.remainder, case.interest_fees, case.paid_off]
    assert case.allocation_outstanding is not None
    values.append(case.allocation_outstanding.principal)
    assert all(type(v) is Decimal for v in values)
    assert case.paid_off == Decimal("0.01")


def test_a_body_that_is_not_json_fails_as_before(client: DebituraClient) -> None:
    with respx.mock(base_url=BASE) as api:
        api.get(f"/managed-cases/{CASE}").mock(return_value=httpx.Response(200, content=b"<html>"))
        with pytest.raises(pydantic.ValidationError, match="Invalid JSON"):
            client.get_managed_case(CASE)
