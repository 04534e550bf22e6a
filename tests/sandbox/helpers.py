"""Helpers for the sandbox's own tests: request bodies, clients, and waiting for background work."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from debitura_provider.sandbox import SandboxServer

WORKBENCH = "Workbench Collections ApS"
ALL_EVENTS = ["case.assigned", "case.updated", "case.closed", "payment.created", "payment.deleted", "chat.created"]
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


@dataclass
class Inbox:
    """What a local receiver got; ``statuses`` are the answers it gives, in order, then 200."""

    url: str
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of_case(self, case_id: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for h, b in self.deliveries if json.loads(b)["data"].get("caseId") == case_id]


def subscribe(
    api: httpx.Client, url: str, *, test_mode: bool = True, events: list[str] | None = None
) -> dict[str, Any]:
    response = api.post("/webhooks", json={"url": url, "events": events or ALL_EVENTS, "isTestMode": test_mode})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def logged(api: httpx.Client, case_id: str, count: int) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = api.get("/webhooks/events", params={"caseId": case_id}).json()
        return rows if len(rows) >= count else None

    result: list[dict[str, Any]] = wait_for(probe, f"{count} logged events for {case_id}")
    return result
