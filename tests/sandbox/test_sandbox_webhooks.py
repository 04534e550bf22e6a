"""Webhook delivery from the sandbox to a real local receiver: signatures, retries, disabling, replay, isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from debitura_provider.api.webhooks import (
    EVENT_HEADER,
    REPLAY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    parse_event,
    verify,
)
from debitura_provider.sandbox import SandboxServer
from debitura_provider.sandbox.delivery.dispatcher import EXHAUSTED, GONE
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import (
    WORKBENCH,
    Inbox,
    case_body,
    client,
    logged,
    new_test_case,
    subscribe,
    verified,
    wait_for,
)


@pytest.fixture
def own(sandbox_factory: SandboxFactory) -> Iterator[SandboxServer]:
    """A sandbox for this test alone: no other test's subscription receives its events, or logs them."""
    with sandbox_factory() as server:
        yield server


@pytest.fixture
def api(own: SandboxServer) -> Iterator[httpx.Client]:
    with client(own) as c:
        yield c


@pytest.fixture
def workbench(own: SandboxServer) -> Iterator[httpx.Client]:
    with client(own, own.partner_keys[WORKBENCH]) as c:
        yield c


def test_deliveries_are_signed_and_logged_as_delivered(api: httpx.Client, inbox: Inbox) -> None:
    sub = subscribe(api, inbox.url)
    assert "secret" not in api.get(f"/webhooks/{sub['id']}").json()
    assert all("secret" not in s for s in api.get("/webhooks").json())
    case = new_test_case(api)
    verified(api, case["id"])
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Closed:Paid", "amount": 1000})
    received = wait_for(
        lambda: inbox.of_case(case["id"]) if len(inbox.of_case(case["id"])) >= 5 else None, "five deliveries"
    )
    kinds = []
    for headers, body in received:
        timestamp = verify(sub["secret"], body, headers[SIGNATURE_HEADER.lower()])
        assert headers[TIMESTAMP_HEADER.lower()] == str(timestamp)
        event = parse_event(body)
        assert headers[EVENT_HEADER.lower()] == event.event
        assert event.typed_data().classification == "test"
        assert event.links["self"].endswith(f"/cases/{case['id']}")
        kinds.append(event.event)
    assert sorted(kinds) == sorted(["case.assigned", "case.updated", "payment.created", "case.updated", "case.closed"])
    rows = logged(api, case["id"], 5)
    assert all(r["attemptCount"] == 1 and r["lastResponseCode"] == 200 and r["deliveredAt"] for r in rows)
    assert sorted(r["payload"].encode() for r in rows) == sorted(body for _, body in received)
    assert [r["createdAt"] for r in rows] == sorted((r["createdAt"] for r in rows), reverse=True)


def test_the_advance_no_op_fires_nothing_and_replay_resends_with_the_replay_header(
    api: httpx.Client, inbox: Inbox
) -> None:
    sub = subscribe(api, inbox.url, events=["case.updated"])
    case = new_test_case(api)
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    [row] = logged(api, case["id"], 1)
    replayed = api.post(f"/webhooks/events/{row['id']}/replay").json()
    assert replayed == {"eventId": row["id"], "subscriptionId": sub["id"], "eventType": "case.updated"}
    assert api.post(f"/test/cases/{case['id']}/replay-last-event").json()["eventId"] == row["id"]
    deliveries = wait_for(
        lambda: inbox.of_case(case["id"]) if len(inbox.of_case(case["id"])) >= 3 else None, "the replays"
    )
    assert len({body for _, body in deliveries}) == 1, "a replay sends the original payload"
    assert [h.get(REPLAY_HEADER.lower()) for h, _ in deliveries] == [None, "true", "true"]


def test_failed_deliveries_are_retried_until_they_succeed(api: httpx.Client, inbox: Inbox) -> None:
    inbox.statuses = [500, 503]
    subscribe(api, inbox.url, events=["case.updated"])
    case = new_test_case(api)
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    row = wait_for(lambda: next((r for r in logged(api, case["id"], 1) if r.get("deliveredAt")), None), "delivery")
    assert (row["attemptCount"], row["lastResponseCode"]) == (3, 200)
    assert len(inbox.of_case(case["id"])) == 3


def test_eight_failures_in_a_row_disable_the_subscription(api: httpx.Client, inbox: Inbox) -> None:
    inbox.statuses = [500] * 8
    sub = subscribe(api, inbox.url, events=["case.updated"])
    case = new_test_case(api)
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    disabled = wait_for(
        lambda: (s := api.get(f"/webhooks/{sub['id']}").json())["isActive"] is False and s,
        "the subscription to be disabled",
    )
    assert disabled["disabledReason"] == EXHAUSTED
    [row] = logged(api, case["id"], 1)
    assert (row["attemptCount"], row["lastResponseCode"], row["lastError"]) == (8, 500, "HTTP 500")
    assert api.post(f"/webhooks/events/{row['id']}/replay").status_code == 400, "disabled"
    enabled = api.put(f"/webhooks/{sub['id']}", json={"isActive": True}).json()
    assert (enabled["isActive"], enabled.get("disabledReason")) == (True, None)
    assert api.post(f"/webhooks/events/{row['id']}/replay").status_code == 200


def test_410_gone_disables_at_once(api: httpx.Client, inbox: Inbox) -> None:
    inbox.statuses = [410]
    sub = subscribe(api, inbox.url, events=["case.updated"])
    case = new_test_case(api)
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    disabled = wait_for(
        lambda: (s := api.get(f"/webhooks/{sub['id']}").json())["isActive"] is False and s,
        "the subscription to be disabled",
    )
    assert disabled["disabledReason"] == GONE
    assert logged(api, case["id"], 1)[0]["attemptCount"] == 1


def test_test_subscriptions_get_test_events_and_live_ones_production_events(
    api: httpx.Client, workbench: httpx.Client, inbox: Inbox
) -> None:
    live = subscribe(api, inbox.url, test_mode=False, events=["case.assigned"])
    test = subscribe(api, inbox.url, test_mode=True, events=["case.assigned"])
    production = api.post(
        "/managed-cases", json=case_body(isTest=False, collectionPartnerId=workbench.get("/me").json()["id"])
    ).json()
    test_case = new_test_case(api)
    verified(api, production["id"])
    verified(api, test_case["id"])
    prod_rows = logged(api, production["id"], 1)
    test_rows = logged(api, test_case["id"], 1)
    assert [r["subscriptionId"] for r in prod_rows] == [live["id"]]
    assert [r["subscriptionId"] for r in test_rows] == [test["id"]]
    assert json.loads(prod_rows[0]["payload"])["links"]["self"].endswith(f"/managed-cases/{production['id']}")
    assert workbench.get("/webhooks/events", params={"caseId": production["id"]}).json() == [], (
        "another partner never sees your event log"
    )


def test_fire_sends_the_current_state_and_needs_the_data(api: httpx.Client, inbox: Inbox) -> None:
    sub = subscribe(api, inbox.url, events=["payment.created", "chat.created", "case.closed"])
    case = new_test_case(api)
    assert api.post(f"/test/cases/{case['id']}/replay-last-event").status_code == 404
    fire = {"event": "payment.created", "caseId": case["id"]}
    assert api.post("/test/webhooks/fire", json=fire).status_code == 422
    assert api.post("/test/webhooks/fire", json={**fire, "event": "payment.teleported"}).status_code == 400
    assert (
        api.post(
            "/test/webhooks/fire", json={"event": "case.closed", "caseId": case["id"], "subscriptionId": case["id"]}
        ).status_code
        == 400
    )
    fired = api.post("/test/webhooks/fire", json={"event": "case.closed", "caseId": case["id"]}).json()
    assert fired == {"eventType": "case.closed", "caseId": case["id"], "enqueuedCount": 1}
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    payment = api.post(f"/managed-cases/{case['id']}/payments", json={"date": "2026-02-01", "paymentAmount": 5})
    api.delete(f"/managed-cases/{case['id']}/payments/{payment.json()['paymentId']}")
    deleted = api.post(
        "/test/webhooks/fire", json={"event": "payment.deleted", "caseId": case["id"], "subscriptionId": sub["id"]}
    )
    assert deleted.json()["enqueuedCount"] == 1
    rows = logged(api, case["id"], 3)
    data = json.loads(next(r for r in rows if r["eventType"] == "payment.deleted")["payload"])["data"]
    assert (data["paymentId"], data["amount"], data["remainder"]) == (payment.json()["paymentId"], 5.0, 1000.0)


def test_subscription_management(api: httpx.Client, workbench: httpx.Client) -> None:
    assert (
        api.post("/webhooks", json={"url": "http://example.com/hook", "events": ["case.updated"]}).status_code == 400
    ), "plain http only to this machine"
    assert api.post("/webhooks", json={"url": "https://example.com/hook", "events": []}).status_code == 400
    assert (
        api.post("/webhooks", json={"url": "https://example.com/hook", "events": ["case.created"]}).status_code == 400
    ), "case.created is a Customer API event"
    sub = subscribe(api, "https://example.com/hook", events=["case.updated"])
    rekeyed = api.put(f"/webhooks/{sub['id']}", json={"regenerateSecret": True, "events": ["case.closed"]}).json()
    assert rekeyed["secret"] != sub["secret"]
    assert rekeyed["events"] == ["case.closed"]
    assert "secret" not in api.put(f"/webhooks/{sub['id']}", json={"isTestMode": False}).json()
    assert workbench.get(f"/webhooks/{sub['id']}").status_code == 404
    assert api.delete(f"/webhooks/{sub['id']}").status_code == 204
    assert api.get(f"/webhooks/{sub['id']}").status_code == 404
