"""Test invoices and test cases on the shared sandbox, each run tagged so that it cleans up after itself."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from debitura_provider.api import DebituraClient


def invoice(tag: str | None, **changes: Any) -> dict[str, Any]:
    """A valid ``isTest`` managed-case request (wire names), tagged unless ``tag`` is None."""
    body: dict[str, Any] = {
        "creditorCompanyName": "Fjord Logistics A/S",
        "creditorCountryAlpha2": "DK",
        "currencyCode": "USD",
        "amountToRecover": 100.0,
        "date": (dt.date.today() - dt.timedelta(days=40)).isoformat(),
        "creditorReference": f"INV-{uuid.uuid4().hex[:10]}",
        "debtor": {"type": "Person", "name": "Sam Rivera", "countryAlpha2": "US", "stateAlpha2": "TX"},
        "isTest": True,
    }
    if tag is not None:
        body["tag"] = tag
    body.update(changes)
    return body


def test_case(client: DebituraClient, tag: str, *, active: bool = True, **changes: Any) -> str:
    """Create a test case (advanced to Active, where payments are allowed) and return its id."""
    case_id = str(client.create_managed_case(invoice(tag, **changes)).id)
    if active:
        client.advance_test_case(case_id, {"to": "Active"})
    return case_id


test_case.__test__ = False  # type: ignore[attr-defined]  # a helper, despite the name


def managed_case_count(client: DebituraClient) -> int:
    return client.list_managed_cases(page_size=1).page.total_results
