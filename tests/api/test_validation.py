"""Invalid requests are refused with the field named, and nothing is sent."""

from __future__ import annotations

import math
from typing import Any

import pytest
import respx

from debitura_provider.api import DebituraClient, RequestValidationError
from debitura_provider.api import models as m
from tests.api.conftest import BASE
from tests.api.samples import CASE_ID, create_request, debtor_request


def _without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


REFUSED = [
    ("missing creditor country", _without(create_request(), "creditorCountryAlpha2"), "creditorCountry"),
    ("unknown creditor country", create_request(creditorCountryAlpha2="XX"), "creditorCountryAlpha2"),
    (
        "creditor country name unknown",
        _without(create_request(creditorCountry="Atlantis"), "creditorCountryAlpha2"),
        "creditorCountry",
    ),
    ("company without contact", debtor_request(contactPerson=None), "debtor.contactPerson"),
    ("company with blank contact", debtor_request(contactPerson="  "), "debtor.contactPerson"),
    ("US debtor without state", debtor_request(stateAlpha2=None), "debtor.stateAlpha2"),
    ("US debtor with a non-state", debtor_request(stateAlpha2="ZZ"), "debtor.stateAlpha2"),
    ("debtor without country", debtor_request(countryAlpha2=None), "debtor.country"),
    ("debtor country not ISO", debtor_request(countryAlpha2="UK"), "debtor.countryAlpha2"),
    ("debtor type unknown", debtor_request(type="Government"), "debtor.type"),
    ("debtor without name", debtor_request(name=""), "debtor.name"),
    ("debtor email malformed", debtor_request(email="not-an-email"), "debtor.email"),
    ("negative amount", create_request(amountToRecover=-5), "amountToRecover"),
    ("zero amount", create_request(amountToRecover=0), "amountToRecover"),
    ("NaN amount", create_request(amountToRecover=math.nan), "amountToRecover"),
    ("infinite amount", create_request(amountToRecover=math.inf), "amountToRecover"),
    ("amount as text", create_request(amountToRecover="1.000,50"), "amountToRecover"),
    ("currency not ISO 4217", create_request(currencyCode="EURO"), "currencyCode"),
    ("currency unknown", create_request(currencyCode="XYZ"), "currencyCode"),
    ("creditorReference over 50", create_request(creditorReference="R" * 51), "creditorReference"),
    ("comments over 4000", create_request(comments="c" * 4001), "comments"),
    ("claimDescription over 4000", create_request(claimDescription="c" * 4001), "claimDescription"),
    ("tag over 100", create_request(tag="t" * 101), "tag"),
    ("empty creditor name", create_request(creditorCompanyName=""), "creditorCompanyName"),
    ("invalid date", create_request(date="2026-02-30"), "date"),
    ("future invoice date", create_request(date="2999-01-01", dueDate=None), "date"),
    ("due date before invoice date", create_request(date="2026-04-22", dueDate="2026-04-01"), "dueDate"),
    ("collectionPartnerId not a UUID", create_request(collectionPartnerId="partner-7"), "collectionPartnerId"),
    ("isTestCase instead of isTest", create_request(isTestCase=True), "body"),
    ("unknown field", create_request(debtorName="x"), "debtorName"),
]


@pytest.mark.parametrize(("label", "body", "field"), REFUSED, ids=[r[0] for r in REFUSED])
@pytest.mark.respx(assert_all_called=False)
def test_create_is_refused_before_sending(
    client: DebituraClient, respx_mock: respx.MockRouter, label: str, body: dict[str, Any], field: str
) -> None:
    route = respx_mock.post(f"{BASE}/managed-cases").respond(200)
    with pytest.raises(RequestValidationError) as raised:
        client.create_managed_case(body)
    assert field in raised.value.field_errors, raised.value.field_errors
    assert "nothing was sent" in str(raised.value)
    assert route.call_count == 0


def test_is_test_case_mistake_explains_itself() -> None:
    with pytest.raises(RequestValidationError, match="send 'isTest'"):
        DebituraClient("k", BASE).create_managed_case(create_request(isTestCase=True))


def test_accepted_variants_are_normalised() -> None:
    request = m.CreateManagedCaseRequest.model_validate(
        create_request(
            currencyCode="usd",
            debtor={"type": "private", "name": "Jane Roe", "country": "United States", "stateAlpha2": "US-ny"},
        )
    )
    assert request.currency_code == "USD"
    assert request.debtor.type is m.DebtorType.PERSON
    assert request.debtor.state_alpha2 == "NY"
    assert request.debtor.jurisdiction == "US-NY"
    assert request.to_json_types()["date"] == "2026-04-22"


def test_request_examples_of_the_spec_parse(openapi_spec: dict[str, Any]) -> None:
    schemas = openapi_spec["components"]["schemas"]
    prefix = "Debitura.Web.ExternalApi.Contracts.V1."
    models = {
        "Cases.Requests.CreateManagedCaseRequest": m.CreateManagedCaseRequest,
        "Cases.Requests.StartCaseRequest": m.StartCaseRequest,
        "Payments.CreatePaymentRequest": m.CreatePaymentRequest,
    }
    for name, model in models.items():
        example = schemas[prefix + name]["example"]
        assert model.model_validate(example).to_json_types()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.get_managed_case("not-a-uuid"), "id"),
        (lambda c: c.list_managed_cases(page_size=101), "PageSize"),
        (lambda c: c.list_managed_cases(page=0), "Page"),
        (lambda c: c.list_managed_cases(statuses=["Finished"]), "Statuses"),
        (lambda c: c.record_test_payment(CASE_ID, {"date": "2026-11-21", "paymentAmount": 0}), "paymentAmount"),
        (
            lambda c: c.record_payment(
                CASE_ID, {"date": "2026-11-21", "paymentAmount": 10, "paymentRecipient": "Creditor"}
            ),
            "body",
        ),
        (lambda c: c.close_case(CASE_ID, {"closeCode": "Forgotten"}), "closeCode"),
        (lambda c: c.close_case(CASE_ID, {"closeCode": "Other"}), "body"),
        (lambda c: c.start_case(CASE_ID, {"welcomeMessage": "hi"}), "body"),
        (lambda c: c.send_case_chat(CASE_ID, {"message": "x" * 10001, "userEmail": "a@b.dk"}), "message"),
        (lambda c: c.create_webhook({"url": "http://agency.example/hook", "events": ["payment.created"]}), "url"),
        (
            lambda c: c.create_webhook({"url": "https://agency.example/hook", "events": ["payment.received"]}),
            "events.0",
        ),
        (lambda c: c.advance_test_case(CASE_ID, {"to": "Closed"}), "to"),
        (lambda c: c.delete_test_cases_by_tag(""), "tag"),
        (lambda c: c.upload_case_file(CASE_ID, "virus.exe", b"MZ"), "File"),
        (lambda c: c.create_managed_case(create_request(), idempotency_key="k" * 256), "Idempotency-Key"),
    ],
)
@pytest.mark.respx(assert_all_called=False)
def test_other_operations_refuse_bad_input(
    client: DebituraClient, respx_mock: respx.MockRouter, call: Any, field: str
) -> None:
    route = respx_mock.route().respond(200)
    with pytest.raises(RequestValidationError) as raised:
        call(client)
    assert field in raised.value.field_errors, raised.value.field_errors
    assert route.call_count == 0
