"""Lifecycle, payment arithmetic and close-code rules, driven through the HTTP API as a partner would."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from debitura_provider.sandbox import SandboxServer
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import WORKBENCH, case_body, client, new_test_case, verified, wait_for


def started(api: httpx.Client, sandbox: SandboxServer, **fees: float) -> dict[str, Any]:
    """A test case accepted by its (self-assigned) collection partner with ``POST /cases/{id}/start``."""
    case = new_test_case(api)
    verified(api, case["id"])
    user = api.get("/users").json()["users"][0]
    response = api.post(
        f"/cases/{case['id']}/start",
        json={
            "welcomeMessage": "We have taken over the case.",
            "userEmail": user["email"],
            "collectionPartnerReference": f"CP-{case['reference']}",
            **fees,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "Active"
    return case


def pay(api: httpx.Client, case_id: str, amount: float, **extra: Any) -> httpx.Response:
    return api.post(
        f"/cases/{case_id}/payments",
        json={
            "date": "2026-02-01",
            "paymentAmount": amount,
            "paymentRecipient": "CollectionPartner",
            **extra,
        },
    )


def test_a_new_case_is_verified_then_started_then_closed_and_every_step_is_on_the_timeline(
    api: httpx.Client, sandbox: SandboxServer
) -> None:
    created = new_test_case(api)
    assert created["lifecycle"] == "Pending Verification Internal"
    assert created["isTestCase"] is True
    assert verified(api, created["id"])["lifecycle"] == "Pending Verification"

    started_case = api.post(
        f"/cases/{created['id']}/start",
        json={"welcomeMessage": "Hello!", "userEmail": api.get("/users").json()["users"][0]["email"]},
    )
    assert started_case.status_code == 200
    assert api.get(f"/cases/{created['id']}").json()["currentEngagementPhase"] == "Pre-legal"
    assert [c["message"] for c in api.get(f"/cases/{created['id']}/chats").json()] == ["Hello!"]
    assert pay(api, created["id"], 1000, closeCase=True).json()["caseClosed"] is True

    case = api.get(f"/managed-cases/{created['id']}").json()
    assert (case["lifecycle"], case["closeCode"], case["remainder"]) == ("Closed", "Paid", 0.0)
    types = [item["type"] for item in api.get(f"/managed-cases/{created['id']}/timeline").json()["items"]]
    assert types == [
        "CaseCreated",
        "CaseAssigned",
        "LifecycleChanged",
        "ChatMessage",
        "PaymentRegistered",
        "LifecycleChanged",
        "CaseClosed",
    ]


def test_start_needs_a_pending_verification_case_and_a_user_of_the_partner(
    api: httpx.Client, sandbox: SandboxServer
) -> None:
    case = started(api, sandbox)
    again = api.post(f"/cases/{case['id']}/start", json={"welcomeMessage": "x", "userEmail": "a@b.example"})
    assert again.status_code == 400
    other = new_test_case(api)
    verified(api, other["id"])
    stranger = api.post(f"/cases/{other['id']}/start", json={"welcomeMessage": "x", "userEmail": "nobody@x.example"})
    assert stranger.status_code == 400
    assert "userEmail" in stranger.json()["errors"]


def test_remainder_is_gross_plus_fees_minus_payments_and_fees_are_paid_first(
    api: httpx.Client, sandbox: SandboxServer
) -> None:
    case = started(api, sandbox, interestFees=10.0, reminderFees=5.0, collectionFees=20.0)
    first = pay(api, case["id"], 100.0)
    assert first.status_code == 200, first.text
    assert first.json()["remainingAmount"] == 935.0
    assert first.json()["caseClosed"] is False
    assert first.json()["warnings"] == []
    assert pay(api, case["id"], 0.1).json()["remainingAmount"] == pytest.approx(934.9)

    state = api.get(f"/cases/{case['id']}").json()
    assert (state["grossAmount"], state["totalAddedFees"], state["remainder"]) == (1000.0, 35.0, 934.9)
    assert state["allocationOutstanding"] == {
        "principal": 934.9,
        "interest": 0.0,
        "reminderFees": 0.0,
        "collectionFees": 0.0,
    }
    fees = api.put(
        f"/cases/{case['id']}/fees", json={"interestFees": 50.0, "reminderFees": 5.0, "collectionFees": 20.0}
    )
    assert fees.json()["remainder"] == pytest.approx(974.9)
    assert [p["grossAmount"] for p in api.get(f"/managed-cases/{case['id']}/payments").json()] == [0.1, 100.0]


def test_a_partial_payment_with_close_case_is_recorded_and_the_case_stays_open(
    api: httpx.Client, sandbox: SandboxServer
) -> None:
    case = started(api, sandbox)
    partial = pay(api, case["id"], 400.0, closeCase=True).json()
    assert (partial["caseClosed"], partial["remainingAmount"]) == (False, 600.0)
    assert "closeCode" not in partial
    full = pay(api, case["id"], 600.0, closeCase=True).json()
    assert (full["caseClosed"], full["closeCode"], full["remainingAmount"]) == (True, "Paid", 0.0)


def test_an_explicit_split_must_add_up_and_a_zero_creditor_share_is_only_a_warning(
    api: httpx.Client, sandbox: SandboxServer
) -> None:
    case = started(api, sandbox)
    wrong = pay(api, case["id"], 100.0, payoutCreditor=50.0, payoutCollectionPartner=10.0)
    assert wrong.status_code == 400
    zero = pay(api, case["id"], 100.0, payoutCreditor=0.0, payoutCollectionPartner=100.0).json()
    assert (zero["payoutCreditor"], zero["payoutCollectionPartner"]) == (0.0, 100.0)
    assert len(zero["warnings"]) == 1
    computed = pay(api, case["id"], 100.0).json()  # 1000 EUR principal: 25 % success fee
    assert (computed["payoutCreditor"], computed["payoutCollectionPartner"]) == (75.0, 25.0)
    creditor = pay(api, case["id"], 10.0, paymentRecipient="Creditor")
    assert creditor.status_code == 400, "Creditor needs commissionPaymentStatus"


@pytest.mark.parametrize(
    ("payments", "code", "allowed"),
    [
        ([], "Paid", False),
        ([400.0], "Paid", False),
        ([1000.0], "Paid", True),
        ([], "PartiallyPaid", False),
        ([400.0], "PartiallyPaid", True),
        ([1000.0], "PartiallyPaid", False),
        ([], "DebtorUntraceable", True),
        ([400.0], "Debtor Untraceable", True),
        ([], "Other", False),
    ],
)
def test_close_codes_follow_the_payment_rules(
    api: httpx.Client, sandbox: SandboxServer, payments: list[float], code: str, allowed: bool
) -> None:
    case = started(api, sandbox)
    for amount in payments:
        assert pay(api, case["id"], amount).status_code == 200
    response = api.post(f"/cases/{case['id']}/close", json={"closeCode": code})
    assert (response.status_code == 200) is allowed, response.text
    if allowed:
        body = response.json()
        assert body["caseReference"] == case["reference"]
        assert body["totalPayments"] == sum(payments)
        label = api.get(f"/cases/{case['id']}").json()["closeCode"]
        assert label == body["closeCodeDescription"]
        assert api.post(f"/cases/{case['id']}/close", json={"closeCode": code}).status_code == 400


def test_other_needs_a_comment_and_partially_paid_has_its_label(api: httpx.Client, sandbox: SandboxServer) -> None:
    case = started(api, sandbox)
    assert (
        api.post(f"/cases/{case['id']}/close", json={"closeCode": "Other", "comment": "Debtor moved"}).json()[
            "closeCodeDescription"
        ]
        == "Other"
    )
    partial = started(api, sandbox)
    pay(api, partial["id"], 10.0)
    body = api.post(f"/cases/{partial['id']}/close", json={"closeCode": "PartiallyPaid"}).json()
    assert (body["closeCode"], body["closeCodeDescription"]) == ("PartiallyPaid", "Partially paid")


def test_editing_or_deleting_a_payment_of_a_paid_case_needs_consent_to_reopen(
    api: httpx.Client, sandbox: SandboxServer
) -> None:
    case = started(api, sandbox)
    payment_id = pay(api, case["id"], 1000.0, closeCase=True).json()["paymentId"]
    edit = {"date": "2026-02-01", "paymentAmount": 900.0, "paymentRecipient": "CollectionPartner"}
    assert api.put(f"/cases/{case['id']}/payments/{payment_id}", json=edit).status_code == 409
    assert api.delete(f"/cases/{case['id']}/payments/{payment_id}").status_code == 409
    assert api.get(f"/cases/{case['id']}").json()["lifecycle"] == "Closed"

    edited = api.put(f"/cases/{case['id']}/payments/{payment_id}", json={**edit, "reopenCaseIfNeeded": True})
    assert edited.status_code == 200
    assert edited.json()["grossAmount"] == 900.0
    reopened = api.get(f"/cases/{case['id']}").json()
    assert (reopened["lifecycle"], reopened.get("closeCode"), reopened["remainder"]) == ("Active", None, 100.0)

    deleted = api.delete(f"/cases/{case['id']}/payments/{payment_id}", params={"reopenCaseIfNeeded": "true"})
    assert deleted.status_code == 204
    assert api.get(f"/cases/{case['id']}/payments").json() == []
    assert api.get(f"/cases/{case['id']}").json()["remainder"] == 1000.0
    assert api.delete(f"/cases/{case['id']}/payments/{payment_id}").status_code == 404


def test_payments_need_a_started_case(api: httpx.Client, sandbox: SandboxServer) -> None:
    case = new_test_case(api)
    verified(api, case["id"])
    assert pay(api, case["id"], 10.0).status_code == 400
    assert (
        api.post(f"/managed-cases/{case['id']}/payments", json={"date": "2026-02-01", "paymentAmount": 10}).status_code
        == 400
    )


def test_test_payments_through_managed_cases(api: httpx.Client, sandbox: SandboxServer) -> None:
    case = new_test_case(api)
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    url = f"/managed-cases/{case['id']}/payments"
    refused = api.post(url, json={"date": "2026-02-01", "paymentAmount": 400, "closeCase": True})
    assert refused.status_code == 400, "a partial payment cannot close"
    assert api.get(url).json() == []
    first = api.post(url, json={"date": "2026-02-01", "paymentAmount": 400}).json()
    assert (first["remainingAmount"], first["caseClosed"]) == (600.0, False)
    last = api.post(url, json={"date": "2026-02-02", "paymentAmount": 600, "closeCase": True}).json()
    assert (last["remainingAmount"], last["caseClosed"]) == (0.0, True)
    edit = {
        "date": "2026-02-01",
        "paymentAmount": 300.0,
        "paymentRecipient": "Creditor",
        "commissionPaymentStatus": "Unpaid",
    }
    assert api.put(f"{url}/{first['paymentId']}", json=edit).status_code == 409
    assert api.put(f"{url}/{first['paymentId']}", json={**edit, "reopenCaseIfNeeded": True}).status_code == 200
    assert api.delete(f"{url}/{last['paymentId']}").status_code == 204
    assert api.get(f"/managed-cases/{case['id']}").json()["remainder"] == 700.0


def test_production_cases_refuse_test_payments_and_test_endpoints(api: httpx.Client, sandbox: SandboxServer) -> None:
    case = api.post("/managed-cases", json=case_body(isTest=False, tag=None)).json()
    assert (
        api.post(f"/managed-cases/{case['id']}/payments", json={"date": "2026-02-01", "paymentAmount": 1}).status_code
        == 400
    )
    assert api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"}).status_code == 400
    assert api.delete(f"/test/cases/{case['id']}").status_code == 400
    assert api.get(f"/cases/{case['id']}").status_code == 404, "the managing partner does not collect it"


def test_advance_drives_test_cases_and_is_a_no_op_when_already_there(api: httpx.Client, sandbox: SandboxServer) -> None:
    case = new_test_case(api)
    url = f"/test/cases/{case['id']}/advance"
    assert api.post(url, json={"to": "Closed:Paid"}).status_code == 400, "amount is required"
    assert api.post(url, json={"to": "Somewhere"}).status_code == 400
    assert api.post(url, json={"to": "Active"}).json() == {"advanced": True, "state": "Active"}
    assert api.post(url, json={"to": "Active"}).json() == {"advanced": False, "state": "Active"}
    assert api.post(url, json={"to": "Closed:Paid", "amount": 1000}).json() == {
        "advanced": True,
        "state": "Closed:Paid",
    }
    assert api.post(url, json={"to": "Closed:Paid", "amount": 1000}).json()["advanced"] is False
    assert api.post(url, json={"to": "Closed:NoPayment"}).status_code == 400
    final = api.get(f"/cases/{case['id']}").json()
    assert (final["lifecycle"], final["closeCode"], final["remainder"]) == ("Closed", "Paid", 0.0)
    other = new_test_case(api)
    assert api.post(f"/test/cases/{other['id']}/advance", json={"to": "Closed:NoPayment"}).json() == {
        "advanced": True,
        "state": "Closed:NoPayment",
    }
    assert api.get(f"/managed-cases/{other['id']}").json()["closeCode"] == "Pre-Legal Exhausted \u2013 No Payment"


def test_test_cases_are_deleted_by_id_and_by_tag_and_deleting_twice_is_fine(
    api: httpx.Client, sandbox: SandboxServer
) -> None:
    one = new_test_case(api, tag="delete-me")
    two = new_test_case(api, tag="delete-me")
    assert api.delete(f"/test/cases/{one['id']}").status_code == 204
    assert api.delete(f"/test/cases/{one['id']}").status_code == 204
    assert api.get(f"/managed-cases/{one['id']}").status_code == 404
    assert api.delete("/test/cases", params={"tag": "delete-me"}).status_code == 204
    assert api.get(f"/managed-cases/{two['id']}").status_code == 404
    assert api.delete("/test/cases", params={"tag": " "}).status_code == 400
    assert api.delete(f"/test/cases/{'0' * 8}-0000-4000-8000-{'0' * 12}").status_code == 404
    api.post("/managed-cases", json=case_body(isTest=False, tag="mixed"))
    new_test_case(api, tag="mixed")
    assert api.delete("/test/cases", params={"tag": "mixed"}).status_code == 400


def test_lists_page_filter_and_sort(api: httpx.Client, sandbox: SandboxServer) -> None:
    ids = [new_test_case(api, amountToRecover=float(amount))["id"] for amount in (300, 100, 200)]
    api.post(f"/test/cases/{ids[0]}/advance", json={"to": "Active"})
    params: dict[str, Any] = {"Ids": ids, "Sort": "GrossAmount:desc,Nonsense:asc", "PageSize": 2}
    first = api.get("/managed-cases", params=params).json()
    assert first["page"] == {"totalResults": 3, "pageSize": 2, "currentPage": 1, "responseCount": 2, "totalPages": 2}
    assert [c["grossAmount"] for c in first["cases"]] == [300.0, 200.0]
    second = api.get("/managed-cases", params={**params, "Page": 2}).json()
    assert [c["grossAmount"] for c in second["cases"]] == [100.0]
    active = api.get("/managed-cases", params={"ids": ",".join(ids), "statuses[]": "active"}).json()
    assert [c["id"] for c in active["cases"]] == [ids[0]]
    assert (
        api.get("/managed-cases", params={"Statuses": "Pending Verification,Active", "Ids": ids}).json()["page"][
            "totalResults"
        ]
        == 3
    )
    assert api.get("/managed-cases", params={"PageSize": 101}).status_code == 400
    assert api.get("/managed-cases", params={"Statuses": "Sleeping"}).status_code == 400
    hidden = api.get("/cases", params={"Ids": ids}).json()["page"]["totalResults"]
    shown = api.get("/cases", params={"Ids": ids, "includeTestCases": "true"}).json()["page"]["totalResults"]
    assert (hidden, shown) == (0, 3)


def test_cases_in_internal_verification_are_hidden_from_the_collection_partner(
    sandbox_factory: SandboxFactory,
) -> None:
    with (
        sandbox_factory(speed=1.0) as server,
        client(server) as api,
        client(server, server.partner_keys[WORKBENCH]) as partner,
    ):
        workbench_id = partner.get("/me").json()["id"]
        case = api.post("/managed-cases", json=case_body(isTest=False, collectionPartnerId=workbench_id)).json()
        assert case["collectionPartner"]["name"] == WORKBENCH
        assert api.get(f"/managed-cases/{case['id']}").json()["lifecycle"] == "Pending Verification Internal"
        assert partner.get(f"/cases/{case['id']}").status_code == 404
        assert partner.get("/cases", params={"Statuses": "PendingVerificationInternal"}).json()["cases"] == []
        assert partner.get(f"/managed-cases/{case['id']}").status_code == 404, "not its managed case"


def test_routing_by_jurisdiction(api: httpx.Client, sandbox: SandboxServer) -> None:
    def partner_for(**debtor: Any) -> httpx.Response:
        body = case_body(isTest=False, tag=None, debtor={"type": "Person", "name": "Pat Doe", **debtor})
        return api.post("/managed-cases", json=body)

    assert partner_for(countryAlpha2="US", stateAlpha2="US-NY").json()["collectionPartner"]["name"] == (
        "Liberty Receivables LLC"
    )
    assert partner_for(country="Sweden").json()["collectionPartner"]["name"] == "Nordic Recovery A/S"
    assert partner_for(countryAlpha2="US").status_code == 400, "a US debtor needs its state"
    uncovered = partner_for(countryAlpha2="JP")
    assert uncovered.status_code == 422
    assert uncovered.json() == {
        "businessErrors": [
            {"type": "NoPartnerAvailable", "message": "No collection partner available for this jurisdiction (JP)."}
        ]
    }
    wrong_partner = api.post(
        "/managed-cases", json=case_body(isTest=False, collectionPartnerId=api.get("/me").json()["id"])
    )
    assert wrong_partner.status_code == 422


def test_collection_partner_side_notes_files_lookups_and_exclusive_period(
    sandbox: SandboxServer, api: httpx.Client, workbench: httpx.Client
) -> None:
    me = workbench.get("/me").json()
    case = api.post("/managed-cases", json=case_body(isTest=False, collectionPartnerId=me["id"])).json()
    verified(api, case["id"])
    user = workbench.get("/users").json()["users"][0]
    start = workbench.post(
        f"/cases/{case['id']}/start",
        json={
            "welcomeMessage": "Hi",
            "userEmail": user["email"],
            "collectionPartnerReference": f"WB-{case['reference']}",
        },
    )
    assert start.status_code == 200, start.text
    note = workbench.post(
        f"/cases/{case['id']}/notes", json={"description": "Called the debtor", "eventDate": "2026-01-20T10:00:00Z"}
    )
    assert note.json()["createdBy"]["userName"] == user["name"]
    future = workbench.post(f"/cases/{case['id']}/notes", json={"description": "x", "eventDate": "2999-01-01"})
    assert future.status_code == 400
    uploaded = workbench.post(
        f"/cases/{case['id']}/files",
        files={"File": ("letter.pdf", b"%PDF-1.4", "x")},
        data={"DocumentType": "DemandLetter", "Description": "First letter"},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert httpx.get(uploaded.json()["url"]).content == b"%PDF-1.4"
    assert workbench.post(f"/cases/{case['id']}/files", files={"File": ("run.exe", b"MZ", "x")}).status_code == 415
    assert [f["fileName"] for f in api.get(f"/managed-cases/{case['id']}/files").json()] == ["letter.pdf"]
    by_ref = workbench.get(f"/cases/by-partner-reference/WB-{case['reference']}")
    assert by_ref.json()["id"] == case["id"]
    batch = workbench.get("/cases/by-partner-reference", params={"references": f"WB-{case['reference']},nope"})
    assert list(batch.json()) == [f"WB-{case['reference']}"]
    creditor = workbench.get(
        "/cases/by-creditor-reference",
        params={"reference": case["creditorReference"], "creditorId": case["creditor"]["id"]},
    )
    assert creditor.json()["id"] == case["id"]
    period = workbench.get(f"/cases/{case['id']}/exclusive-period").json()
    assert (period["status"], period["extensions"]) == ("Active", [])
    assert workbench.get(f"/cases/{case['id']}/validation").json() == {"needsInfo": False, "items": []}
    assert api.get(f"/cases/{case['id']}").status_code == 404, "the managing partner reads /managed-cases"


def test_ingestion_jobs_add_notes_in_the_background(api: httpx.Client, sandbox: SandboxServer) -> None:
    case = new_test_case(api)
    verified(api, case["id"])
    unknown = "6f1c2a9e-3b7d-4c1e-9a2f-0d8e7b6a5c4d"
    rows = [
        {"type": 0, "caseId": case["id"], "description": "Letter sent"},
        {"type": 0, "caseId": unknown, "description": "Lost"},
    ]
    job = api.post("/ingestion-jobs", json={"rows": rows})
    assert job.status_code == 202
    assert job.json()["rowsQueued"] == 2
    url = f"/ingestion-jobs/{job.json()['jobId']}"
    status = wait_for(lambda: (s := api.get(url).json())["status"] != 0 and s, "the job to run")
    assert status == {"status": 3, "rowsTotal": 2, "rowsSucceeded": 1, "rowsFailed": 1}
    notes = [
        i["description"] for i in api.get(f"/cases/{case['id']}/timeline").json()["items"] if i["type"] == "NoteAdded"
    ]
    assert notes == ["Letter sent"]
    assert api.post("/ingestion-jobs", json={"rows": [{"type": 1, "caseId": case["id"]}]}).status_code == 400
    with client(sandbox, sandbox.partner_keys[WORKBENCH]) as other:
        assert other.get(url).status_code == 404
