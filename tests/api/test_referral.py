"""Bulk referral's checks before sending: every record gets a verdict, nothing invalid goes out."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import respx

from debitura_provider.api import AsyncDebituraClient
from debitura_provider.api.referral import Outcome, Status, prepare, refer
from tests.api.conftest import BASE


def record(key: Any, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "record_id": key,
        "creditorCompanyName": "Fjord Logistics A/S",
        "creditorCountryAlpha2": "DK",
        "currencyCode": "EUR",
        "amountToRecover": 1200.0,
        "date": "2025-10-01",
        "creditorReference": f"INV-{key}",
        "debtor": {"type": "Person", "name": "Erika Muster", "countryAlpha2": "DE"},
    }
    base.update(changes)
    return base


def test_every_record_gets_a_verdict_before_anything_is_sent() -> None:
    same_body = record(4)
    records = [
        record(1),
        record(2, debtor={"type": "Company", "name": "Acme Inc", "countryAlpha2": "US"}),
        "not a record",
        record(1, creditorReference="INV-other"),
        same_body,
        {**copy.deepcopy(same_body), "record_id": 5},
        record(6, amountToRecover=-3),
    ]
    sendable, rejected = prepare(records)
    assert [r.index for r in sendable] == [0, 4]
    assert sorted(rejected) == [1, 2, 3, 5, 6]
    assert rejected[1].field_errors == {
        "debtor.contactPerson": ["a Company debtor needs a contact person"],
        "debtor.stateAlpha2": ["a US debtor needs its state (e.g. 'CA'), which decides the jurisdiction"],
    }
    assert rejected[1].reason is not None and rejected[1].reason.startswith("invalid debtor.contactPerson")
    assert rejected[2] == Outcome(None, Status.REJECTED, reason="record is not a mapping (got str)")
    assert rejected[3].reason == "duplicate of 1 in this batch"
    assert rejected[5].reason == "duplicate of 4 in this batch"
    assert rejected[6].field_errors is not None and "amountToRecover" in rejected[6].field_errors
    assert all(o.status is Status.REJECTED and not o.retryable for o in rejected.values())


def test_the_record_key_is_not_sent_and_overrides_win() -> None:
    sendable, rejected = prepare(
        [record("A-1", is_test=False, tag="old")], record_key="record_id", overrides={"isTest": True, "tag": "run-7"}
    )
    assert not rejected
    wire = sendable[0].request.to_json_types()
    assert "record_id" not in wire and "recordId" not in wire
    assert (wire["isTest"], wire["tag"], sendable[0].record_key) == (True, "run-7", "A-1")


def test_outcome_json_is_the_documented_shape() -> None:
    assert Outcome(7, Status.FAILED, reason="timeout", retryable=True).to_json() == {
        "recordKey": 7,
        "status": "failed",
        "caseId": None,
        "reference": None,
        "lifecycle": None,
        "remainder": None,
        "currency": None,
        "reason": "timeout",
        "fieldErrors": None,
        "retryable": True,
    }


async def test_a_replay_is_told_by_the_case_id_a_caller_already_holds(aclient: AsyncDebituraClient) -> None:
    """Debitura's replay is verbatim (same 200, same body): only a known case id marks it."""
    first, second = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    answers = {"INV-1": first, "INV-2": second}
    with respx.mock(base_url=BASE) as api:
        api.post("/managed-cases").mock(
            side_effect=lambda request: respx.MockResponse(
                200, json={"id": answers[next(r for r in answers if r.encode() in request.content)], "remainder": 1200}
            )
        )
        outcomes = await refer(aclient, [record(1), record(2)], known={1: first, 2: str(uuid.UUID(int=9))})
    assert [(o.record_key, o.status) for o in outcomes] == [(1, Status.EXISTING), (2, Status.CREATED)]
