"""The bad-input corpus (``tests/data/bad_crm_records.jsonl``): every invalid CRM record is refused with a
field-level reason before any request is sent, the valid ones in the same batch go through unchanged
(unicode and injection strings included), and the sandbox itself answers the raw corpus with the spec's
400 or 422, never a 500."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest

from debitura_provider.api import DebituraClient
from debitura_provider.operators.managed_cases import ReferInvoicesOperator
from tests.fixtures.resilience import RequestLog, as_crm_records, corpus, point_debitura
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.resilience

ENTRIES = corpus()


def test_the_corpus_covers_what_issue_7_lists() -> None:
    invalid = [e for e in ENTRIES if e["expect"] == "invalid"]
    assert len(invalid) >= 50
    assert len({e["id"] for e in ENTRIES}) == len(ENTRIES)
    categories = Counter(e["category"] for e in ENTRIES)
    for category in (
        "missing field",
        "wrong type",
        "non-ISO country",
        "non-ISO currency",
        "amount",
        "date",
        "over-long",
        "US without state",
        "Company without contact",
        "unicode (valid)",
        "injection (valid)",
        "duplicate in batch",
    ):
        assert categories[category] >= 1, category
    assert all(e.get("field") for e in invalid)


def test_invalid_records_are_refused_before_sending_and_valid_ones_go_through(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RequestLog()
    with sandbox_factory(edge_middleware=(log.middleware,)) as server:
        point_debitura(monkeypatch, server)
        outcomes = ReferInvoicesOperator(task_id="refer", records=as_crm_records(ENTRIES)).execute({})  # type: ignore[arg-type]
        sent = [json.loads(body) for body in log.bodies("POST", "/managed-cases")]
        with DebituraClient(server.api_key, server.base_url) as client:
            cases = {o["caseId"]: client.get_managed_case(o["caseId"]) for o in outcomes if o["caseId"]}

    assert len(outcomes) == len(ENTRIES)
    for entry, outcome in zip(ENTRIES, outcomes, strict=True):
        expect, shown = entry["expect"], f"{entry['id']}: {outcome}"
        if expect == "invalid":
            assert outcome["status"] == "rejected" and not outcome["retryable"], shown
            named = outcome["fieldErrors"] or {"record": [outcome["reason"]]}
            assert entry["field"] in named and all(named[entry["field"]]), shown
        elif expect == "duplicate":
            assert (outcome["status"], outcome["reason"]) == (
                "rejected",
                f"duplicate of {entry['of']} in this batch",
            ), shown
        elif expect == "api_rejected":
            assert outcome["status"] == "rejected" and entry["type"] in outcome["reason"], shown
        else:
            assert outcome["status"] == "created", shown
    # Exactly the sendable records reached the sandbox, each once: nothing invalid was sent.
    sendable = [e["record"] for e in ENTRIES if e["expect"] in ("valid", "api_rejected")]
    assert sorted(b["creditorReference"] for b in sent) == sorted(r["creditorReference"] for r in sendable)
    # Hostile strings arrive and come back exactly as the CRM held them.
    for entry, outcome in zip(ENTRIES, outcomes, strict=True):
        if entry["expect"] == "valid":
            case = cases[outcome["caseId"]].model_dump(by_alias=True)
            record = entry["record"]
            assert case["debtor"]["name"] == record["debtor"]["name"].strip(), entry["id"]
            for name in ("creditorReference", "claimDescription"):  # the case shows no comments
                assert case[name] == record.get(name, case[name]), (entry["id"], name)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_the_sandbox_answers_the_raw_corpus_with_400_or_422_never_500(sandbox: Any, entry: dict[str, Any]) -> None:
    body = json.dumps(entry["record"], ensure_ascii=False).encode()  # NaN and Infinity as JS tokens, as a CRM may
    response = httpx.post(
        f"{sandbox.base_url}/managed-cases",
        content=body,
        timeout=30,
        headers={"XApiKey": sandbox.api_key, "Content-Type": "application/json"},
    )
    assert response.status_code == entry["sandbox"], response.text
    if response.status_code == 400:
        field = entry.get("sandboxField") or (entry["field"] if entry["field"] != "record" else "body")
        problem = response.json()  # a ValidationProblemDetails: the field map under "errors" (API-NOTES §7.1.3)
        assert problem["status"] == 400 and problem["errors"].get(field), response.text
    assert "Traceback" not in response.text
