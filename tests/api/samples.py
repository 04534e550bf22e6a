"""Request and response bodies used across the client tests, shaped as the spec gives them."""

from __future__ import annotations

import copy
from typing import Any

CASE_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
PAYMENT_ID = "6b7a1f23-9c48-4e72-a901-1d2b3e4f5a6b"

CREATE_REQUEST: dict[str, Any] = {
    "creditorCompanyName": "Acme Services Inc",
    "creditorCountryAlpha2": "DK",
    "currencyCode": "USD",
    "amountToRecover": 15000.0,
    "date": "2026-04-22",
    "dueDate": "2026-05-06",
    "creditorReference": "INV-2024-1234",
    "isTest": True,
    "tag": "unit",
    "debtor": {
        "type": "Company",
        "name": "Pacific Trading LLC",
        "contactPerson": "John Smith",
        "countryAlpha2": "US",
        "stateAlpha2": "CA",
        "city": "San Francisco",
        "email": "accounts@pacifictrading.com",
    },
}

CASE: dict[str, Any] = {
    "id": CASE_ID,
    "dateCreated": "2026-11-20T10:00:00",
    "reference": "Q8OAXF3W",
    "creditorReference": "INV-2024-1234",
    "grossAmount": 15000.0,
    "remainder": 15000.0,
    "currency": "USD",
    "isTestCase": True,
    "lifecycle": "Pending Verification",
    "debtor": {"type": "Company", "name": "Pacific Trading LLC", "countryAlpha2": "US"},
    "someFutureField": {"ignored": True},
}

PAYMENT: dict[str, Any] = {
    "id": PAYMENT_ID,
    "date": "2026-11-21T00:00:00Z",
    "grossAmount": 500.0,
    "recipient": "Creditor",
    "method": "Bank transfer",
    "currency": "USD",
    "invoice": {"status": "Active", "reference": "Q8OAXF3W", "invoiceId": CASE_ID},
}


def create_request(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(CREATE_REQUEST)
    body.update(changes)
    return body


def debtor_request(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(CREATE_REQUEST)
    body["debtor"].update(changes)
    return body


def page(cases: list[dict[str, Any]], current: int, total_pages: int, size: int) -> dict[str, Any]:
    return {
        "page": {
            "currentPage": current,
            "pageSize": size,
            "totalPages": total_pages,
            "responseCount": len(cases),
            "totalResults": size * (total_pages - 1) + len(cases),
        },
        "cases": cases,
    }
