"""Helpers for the sandbox's own tests: request bodies, clients, and waiting for background work."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from debitura_provider.sandbox import SandboxServer

WORKBENCH = "Workbench Collections ApS"
"""The collection partner that never works cases on its own: tests drive it by hand."""


def case_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /managed-cases`` body (a German company debtor, a test case unless overridden)."""
    body: dict[str, Any] = {
        "creditorCompanyName": "Acme Services ApS",
        "creditorCountryAlpha2": "DK",
        "currencyCode": "EUR",
        "amountToRecover": 1000.0,
        "date": "2026-01-15",
        "dueDate": "2026-02-15",
        "creditorReference": f"INV-{uuid.uuid4().hex[:8]}",
        "isTest": True,
        "tag": "sandbox-tests",
        "debtor": {"type": "Company", "name": "Schuldner GmbH", "contactPerson": "Jana Weber", "countryAlpha2": "DE"},
    }
    body.update(overrides)
    return body


def client(server: SandboxServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"XApiKey": key or server.api_key}, timeout=30)


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll until ``probe`` returns something truthy (background work: verification, deliveries)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def verified(api: httpx.Client, case_id: str) -> dict[str, Any]:
    """The case once Debitura's (simulated) internal verification cleared it."""
    def probe() -> dict[str, Any] | None:
        case: dict[str, Any] = api.get(f"/managed-cases/{case_id}").json()
        return case if case["lifecycle"] != "Pending Verification Internal" else None

    result: dict[str, Any] = wait_for(probe, f"verification of {case_id}")
    return result


def new_test_case(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = api.post("/managed-cases", json=case_body(**overrides))
    assert response.status_code == 200, response.text
    case: dict[str, Any] = response.json()
    return case
