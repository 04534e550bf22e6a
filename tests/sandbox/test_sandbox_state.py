"""Persistence with ``--state``, repeatable runs with ``--seed``, and the simulated collection partners."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from debitura_provider.sandbox import SandboxConfig, SandboxServer
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import Inbox, case_body, client, logged, new_test_case, subscribe, verified, wait_for

FAST = 8_640_000.0
"""A hundred sandbox days per real second: a simulated case runs its whole course in about a second."""


def snapshot(api: httpx.Client, case_id: str) -> dict[str, Any]:
    return {
        "case": api.get(f"/managed-cases/{case_id}").json(),
        "payments": api.get(f"/managed-cases/{case_id}/payments").json(),
        "timeline": api.get(f"/managed-cases/{case_id}/timeline").json(),
        "chats": api.get(f"/managed-cases/{case_id}/chats").json(),
        "events": api.get("/webhooks/events", params={"caseId": case_id}).json(),
        "webhooks": api.get("/webhooks").json(),
    }


def test_a_restart_with_state_loses_no_case_payment_subscription_or_event(
    sandbox_factory: SandboxFactory, tmp_path: Path, inbox: Inbox
) -> None:
    state = tmp_path / "sandbox.db"
    with sandbox_factory(state_path=state) as first, client(first) as api:
        subscribe(api, inbox.url, events=["case.updated", "payment.created"])
        case = new_test_case(api)
        api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
        api.post(f"/managed-cases/{case['id']}/payments", json={"date": "2026-02-01", "paymentAmount": 250})
        logged(api, case["id"], 2)
        wait_for(lambda: all(e.get("deliveredAt") for e in logged(api, case["id"], 2)), "deliveries")
        before = snapshot(api, case["id"])
        key = api.headers["XApiKey"]
        idempotent = api.post(
            "/managed-cases", json=case_body(creditorReference="INV-idem"), headers={"Idempotency-Key": "survives"}
        )
    with sandbox_factory(state_path=state) as second, client(second, key) as api:
        assert snapshot(api, case["id"]) == before
        replayed = api.post(
            "/managed-cases", json=case_body(creditorReference="INV-idem"), headers={"Idempotency-Key": "survives"}
        )
        assert replayed.content == idempotent.content
        newer = new_test_case(api)
        assert newer["id"] not in (case["id"], idempotent.json()["id"])
        assert newer["reference"] not in (case["reference"], idempotent.json()["reference"])


def test_a_restart_resumes_simulated_work(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    state = tmp_path / "sandbox.db"
    with sandbox_factory(state_path=state, speed=1.0) as first, client(first) as api:
        case = api.post("/managed-cases", json=case_body(isTest=False)).json()
        assert case["lifecycle"] == "Pending Verification Internal"
    with sandbox_factory(state_path=state, speed=FAST) as second, client(second) as api:
        final = wait_for(
            lambda: (c := api.get(f"/managed-cases/{case['id']}").json())["lifecycle"] == "Closed" and c,
            "the simulated partner to finish the case",
        )
        assert final["dateFinished"]


def course(api: httpx.Client, case_id: str) -> dict[str, Any]:
    """What happened to a case, without the timestamps."""
    final = wait_for(
        lambda: (c := api.get(f"/managed-cases/{case_id}").json())["lifecycle"] == "Closed" and c, "the case to close"
    )
    items = api.get(f"/managed-cases/{case_id}/timeline").json()["items"]
    payments = api.get(f"/managed-cases/{case_id}/payments").json()
    return {
        "reference": final["reference"],
        "close": (final["closeCode"], final["remainder"]),
        "timeline": [(i["type"], i["title"], i["description"]) for i in items],
        "payments": [(p["id"], p["grossAmount"], p["recipient"]) for p in payments],
        "chats": [c["message"] for c in api.get(f"/managed-cases/{case_id}/chats").json()],
    }


def test_the_same_seed_and_requests_repeat_a_run_exactly(sandbox_factory: SandboxFactory) -> None:
    runs = []
    for _ in range(2):
        with sandbox_factory(seed=1234, speed=FAST) as server, client(server) as api:
            cases = [
                api.post(
                    "/managed-cases",
                    json=case_body(isTest=False, tag=None, creditorReference=f"INV-{n}", amountToRecover=1000.0 + n),
                ).json()["id"]
                for n in range(4)
            ]
            runs.append((cases, [course(api, case_id) for case_id in cases]))
    assert runs[0] == runs[1]
    with sandbox_factory(seed=4321, speed=FAST) as server, client(server) as api:
        other = api.post(
            "/managed-cases", json=case_body(isTest=False, tag=None, creditorReference="INV-0", amountToRecover=1000.0)
        ).json()["id"]
    assert other != runs[0][0][0]


def test_simulated_partners_work_production_cases_and_notify_the_managing_partner(
    sandbox_factory: SandboxFactory, inbox: Inbox
) -> None:
    with sandbox_factory(speed=FAST) as server, client(server) as api:
        subscribe(api, inbox.url, test_mode=False)
        case = api.post(
            "/managed-cases",
            json=case_body(
                isTest=False, debtor={"type": "Person", "name": "Pat Doe", "countryAlpha2": "US", "stateAlpha2": "TX"}
            ),
        ).json()
        done = course(api, case["id"])
        kinds = [t for t, _, _ in done["timeline"]]
        assert kinds[:3] == ["CaseCreated", "CaseAssigned", "LifecycleChanged"]
        assert kinds[-1] == "CaseClosed"
        events = {e["eventType"] for e in logged(api, case["id"], 4)}
        assert {"case.assigned", "case.updated", "case.closed", "chat.created"} <= events
        with client(server, server.partner_keys["Liberty Receivables LLC"]) as partner:
            worked = partner.get(f"/cases/{case['id']}").json()
            assert worked["collectionPartner"]["name"] == "Liberty Receivables LLC"
            assert partner.get("/cases", params={"Ids": case["id"]}).json()["page"]["totalResults"] == 1


def test_without_simulation_production_cases_wait_for_their_partner(sandbox_factory: SandboxFactory) -> None:
    with sandbox_factory(simulate=False) as server, client(server) as api:
        case = api.post("/managed-cases", json=case_body(isTest=False)).json()
        assert verified(api, case["id"])["lifecycle"] == "Pending Verification"


def test_the_server_reports_its_address_and_keys_and_stops_its_threads() -> None:
    import threading

    before = set(threading.enumerate())
    with SandboxServer(SandboxConfig(port=0, api_key="my-key", rate_limits=False)) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.portal_url == f"{server.base_url}/portal"
        assert server.api_key == "my-key"
        assert "my-key" not in server.partner_keys.values()
        assert "my-key" not in repr(server) and "my-key" not in repr(server.config)
        with client(server) as api:
            case = new_test_case(api)
        page = httpx.get(f"{server.portal_url}/cases/{case['id']}")
        assert page.status_code == 200 and case["reference"] in page.text
    # AnyIO's idle worker threads are told to stop when the server's loop closes; give them a moment to exit.
    deadline = time.monotonic() + 10
    while not set(threading.enumerate()) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(threading.enumerate()) <= before
