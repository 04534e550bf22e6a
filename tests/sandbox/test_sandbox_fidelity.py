"""Debitura's behaviour where a source speaks (issue 14): sandbox time in the data, ``dateUpdated`` on every
change, the varied outcome mix, per-event auto-disable, managing-partner events, the fallback rate partition."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx

from debitura_provider.sandbox import RateLimitSettings, SandboxServer
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import Inbox, case_body, client, new_test_case, subscribe, verified, wait_for

DEMO_CASES = 25


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _settled(server: SandboxServer) -> bool:
    return all(c.sim_due is None for c in list(server.sandbox.store.cases.values()))


def test_a_demo_of_25_cases_in_the_varied_mix_shows_every_new_case_shape(sandbox_factory: SandboxFactory) -> None:
    countries = ("DE", "DK", "GB", "FR", "SE")
    with sandbox_factory(outcomes="varied") as server, client(server) as api:
        ids = []
        for n in range(DEMO_CASES):
            debtor = {"type": "Person", "name": f"Debtor {n}", "countryAlpha2": countries[n % len(countries)]}
            created = api.post("/managed-cases", json=case_body(isTest=False, tag=None, debtor=debtor))
            assert created.status_code == 200, created.text
            ids.append(created.json()["id"])
        wait_for(lambda: _settled(server), "every simulated case to finish its course", timeout=120)
        cases = [api.get(f"/managed-cases/{i}").json() for i in ids]
        timelines = {i: api.get(f"/managed-cases/{i}/timeline").json()["items"] for i in ids}
    kinds = Counter(item["type"] for items in timelines.values() for item in items)
    closes = Counter(c.get("closeCode") for c in cases)
    moves = {item["description"].split(":")[0] for items in timelines.values() for item in items}
    assert kinds["CaseDeclined"] >= 1, kinds
    assert kinds["PaymentDeleted"] + kinds["PaymentUpdated"] >= 1, kinds
    assert "Pending Verification \u2192 More Info Required" in moves, moves
    assert (
        any(c["lifecycle"] == "Merged" for c in cases)
        or closes["Invalid Case Data"] + closes["Case never started"] >= 1
    ), (closes, Counter(c["lifecycle"] for c in cases))
    assert any(c["totalAddedFees"] > 0 for c in cases)
    assert closes["Paid"] >= 1, "the mix still collects"
    # Sandbox time: a paid case's dates lie days apart, as its course says, not seconds apart.
    paid = next(c for c in cases if c.get("closeCode") == "Paid")
    assert _when(paid["dateFinished"]) - _when(paid["dateCreated"]) > timedelta(days=2)


def test_date_updated_moves_on_every_change_and_sorts_without_ties(api: httpx.Client, sandbox: SandboxServer) -> None:
    case = new_test_case(api, tag="date-updated")
    verified(api, case["id"])
    seen = [api.get(f"/managed-cases/{case['id']}").json()["dateUpdated"]]
    fees = {"interestFees": 5, "reminderFees": 0, "collectionFees": 0, "confirmPriceChange": True}
    changes = [
        lambda: api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"}),
        lambda: api.post(f"/managed-cases/{case['id']}/payments", json={"date": "2026-01-20", "paymentAmount": 10}),
        lambda: api.put(f"/cases/{case['id']}/fees", json=fees),
        lambda: api.post(f"/cases/{case['id']}/files", files={"File": ("a.pdf", b"%PDF")}),
        lambda: api.post(f"/cases/{case['id']}/notes", json={"description": "called the debtor"}),
        lambda: api.post(f"/test/cases/{case['id']}/advance", json={"to": "Closed:NoPayment"}),
    ]
    for change in changes:
        response = change()
        assert response.status_code == 200, response.text
        seen.append(api.get(f"/managed-cases/{case['id']}").json()["dateUpdated"])
    assert all(_when(a) < _when(b) for a, b in itertools.pairwise(seen)), seen
    listed = api.get("/managed-cases", params={"Sort": "DateUpdated:desc", "PageSize": 100, "includeTestCases": True})
    stamps = [_when(c.get("dateUpdated") or c["dateCreated"]) for c in listed.json()["cases"]]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)


def test_one_event_failing_once_each_time_does_not_disable_a_subscription(
    api: httpx.Client, sandbox: SandboxServer, inbox: Inbox
) -> None:
    """Auto-disable counts one event's exhausted retries (API-NOTES §6.5), not failures across events."""
    case = new_test_case(api)
    verified(api, case["id"])
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    sub = subscribe(api, inbox.url, events=["case.updated"])
    inbox.statuses = [500] * 8
    for _ in range(8):
        fired = api.post(
            "/test/webhooks/fire", json={"event": "case.updated", "caseId": case["id"], "subscriptionId": sub["id"]}
        )
        assert fired.status_code == 200, fired.text
    wait_for(lambda: len(inbox.of_case(case["id"])) >= 16, "eight failures and eight successful retries")
    assert api.get(f"/webhooks/{sub['id']}").json()["isActive"] is True


def test_managing_partner_events_off_sends_none_for_its_production_cases(sandbox_factory: SandboxFactory) -> None:
    with sandbox_factory(managing_partner_events=False) as server, client(server) as api:
        production = api.post("/managed-cases", json=case_body(isTest=False, tag=None)).json()
        test = new_test_case(api)
        store = server.sandbox.store
        dispatcher = server.sandbox.dispatcher
        live = subscribe(api, "http://127.0.0.1:9/hook", test_mode=False, events=["case.updated"])
        sandbox_sub = subscribe(api, "http://127.0.0.1:9/hook", test_mode=True, events=["case.updated"])
        recipients: Any = dispatcher.recipients  # type: ignore[attr-defined]
        assert live["id"] not in {str(s.id) for s in recipients(store.cases[_id(production)], "case.updated")}
        assert sandbox_sub["id"] in {str(s.id) for s in recipients(store.cases[_id(test)], "case.updated")}
    with sandbox_factory() as server, client(server) as api:
        production = api.post("/managed-cases", json=case_body(isTest=False, tag=None)).json()
        live = subscribe(api, "http://127.0.0.1:9/hook", test_mode=False, events=["case.updated"])
        recipients = server.sandbox.dispatcher.recipients  # type: ignore[attr-defined]
        assert live["id"] in {
            str(s.id) for s in recipients(server.sandbox.store.cases[_id(production)], "case.updated")
        }


def _id(case: dict[str, Any]) -> Any:
    from uuid import UUID

    return UUID(case["id"])


def test_requests_without_a_valid_key_share_one_rate_limit_partition(sandbox_factory: SandboxFactory) -> None:
    """API-NOTES §1.4: unauthenticated requests share one fallback partition, whatever key they send."""
    limits = RateLimitSettings(per_minute=3, per_hour=1000, per_day=1000)
    with sandbox_factory(rate_limits=True, limits=limits) as server:
        statuses = [httpx.get(f"{server.base_url}/me", headers={"XApiKey": f"guess-{n}"}).status_code for n in range(4)]
        assert statuses == [401, 401, 401, 429]
        with client(server) as api:
            assert api.get("/me").status_code == 200, "a valid key has its own budget"


def test_test_payments_are_invoiced_too_and_then_frozen(sandbox_factory: SandboxFactory) -> None:
    """The spec's 422 on the test-only PUT/DELETE of a payment whose payout was invoiced can happen."""
    with sandbox_factory(payout_invoice_days=0.5) as server, client(server) as api:
        case = new_test_case(api)
        verified(api, case["id"])
        api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
        url = f"/managed-cases/{case['id']}/payments"
        paid = api.post(url, json={"date": "2026-01-20", "paymentAmount": 10}).json()
        edit = {
            "date": "2026-01-20",
            "paymentAmount": 9,
            "paymentRecipient": "Creditor",
            "commissionPaymentStatus": "Unpaid",
        }

        def frozen() -> httpx.Response | None:
            answer = api.put(f"{url}/{paid['paymentId']}", json=edit)
            return answer if answer.status_code == 422 else None

        answer = wait_for(frozen, "the payout to be invoiced (half a sandbox day)")
        assert answer.json()["businessErrors"][0]["type"] == "PaymentInvoiced"
        assert api.delete(f"{url}/{paid['paymentId']}").status_code == 422
