"""The operators under real Airflow (``dag.test()`` on a migrated sqlite DB) against the sandbox over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from debitura_provider.api import DebituraClient
from debitura_provider.compat import AirflowException, AirflowFailException
from debitura_provider.operators.managed_cases import (
    CreateManagedCaseOperator,
    FetchTimelineOperator,
    RecordTestPaymentOperator,
    ReferInvoicesOperator,
)
from tests.airflow_layer.cases import invoice, managed_case_count, test_case
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.airflow


def test_a_retried_create_returns_the_first_case(run_dag: Any, sandbox_client: DebituraClient, case_tag: str) -> None:
    before = managed_case_count(sandbox_client)
    conf = {"creditor": "Fjord Logistics A/S", "amount": 512.5, "date": "2026-01-15", "tag": case_tag}

    first = run_dag("test_create_case", conf=conf)

    assert first.states == {"debtor": "success", "create": "success", "read_downstream": "success"}
    assert first.ti("create").try_number == 2  # the first try died after the case was created
    created = first.xcom("create")
    assert first.xcom("read_downstream") == {"id": created["id"], "isTestCase": True, "remainder": "512.50"}
    assert created["currency"] == "USD" and "debtor" not in created  # the case's summary: no debtor data
    sent = sandbox_client.get_managed_case(created["id"])
    assert sent.debtor is not None and sent.debtor.state_alpha2 == "CA"  # XComArg and Jinja fields were sent
    portal = f"{sandbox_client.base_url}/portal/cases/{created['id']}"
    assert first.xcom("create", key="debitura_case_url") == portal
    assert first.xcom("create", key="_link_DebituraCaseLink") == portal

    second = run_dag("test_create_case", conf=conf)

    assert second.xcom("create")["id"] == created["id"]
    assert managed_case_count(sandbox_client) == before + 1


def test_an_invalid_case_fails_at_once_naming_the_field(
    run_dag: Any, sandbox_client: DebituraClient, case_tag: str
) -> None:
    before = managed_case_count(sandbox_client)
    bad = invoice(case_tag, debtor={"type": "Person", "name": "Sam Rivera", "countryAlpha2": "US"})

    run = run_dag("test_create_case_invalid", conf={"case": bad})

    assert run.states == {"create": "failed"}
    assert run.ti("create").try_number == 1  # retries=1, yet not retried
    with pytest.raises(AirflowFailException, match=r"debtor\.stateAlpha2: a US debtor needs its state"):
        CreateManagedCaseOperator(task_id="create", case=bad).execute({})  # type: ignore[arg-type]
    assert managed_case_count(sandbox_client) == before


def test_timeline_all_or_only_after_a_time(run_dag: Any, sandbox_client: DebituraClient, case_tag: str) -> None:
    case_id = test_case(sandbox_client, case_tag)
    sandbox_client.record_test_payment(case_id, {"date": "2026-01-20", "paymentAmount": 25})
    items = sandbox_client.get_managed_case_timeline(case_id).items

    everything = run_dag("test_fetch_timeline", conf={"case_id": case_id})
    after = run_dag("test_fetch_timeline", conf={"case_id": case_id, "since": items[1].date.isoformat()})

    assert [i["title"] for i in everything.xcom("timeline")] == [i.title for i in items]
    assert [i["title"] for i in after.xcom("timeline")] == [i.title for i in items[2:]]
    assert after.xcom("timeline")[-1]["type"] == "PaymentRegistered"


def test_since_as_a_template_renders_it(sandbox_client: DebituraClient, case_tag: str) -> None:
    case_id = test_case(sandbox_client, case_tag)
    count = len(sandbox_client.get_managed_case_timeline(case_id).items)

    def items(since: Any) -> list[dict[str, Any]]:
        operator = FetchTimelineOperator(task_id="timeline", case_id=case_id, since=since)
        result: list[dict[str, Any]] = operator.execute({"ti": PushedXCom()})  # type: ignore[arg-type]
        return result

    assert len(items("None")) == len(items("")) == len(items(dt.date(2000, 1, 1))) == count
    assert items("2999-01-01T00:00:00Z") == []
    with pytest.raises(AirflowFailException, match="since: 'last week' is not an ISO date"):
        items("last week")


@pytest.mark.parametrize("dag_id", ["test_record_payment", "test_record_payment_crash"])
def test_a_retried_payment_is_not_paid_twice(
    dag_id: str, run_dag: Any, sandbox_client: DebituraClient, case_tag: str
) -> None:
    """Whether the first try lost the answer or died after it, the retry returns the one payment."""
    case_id = test_case(sandbox_client, case_tag)

    run = run_dag(dag_id, conf={"case_id": case_id, "amount": "40"})

    assert run.states == {"pay": "success"}
    assert run.ti("pay").try_number == 2
    payments = sandbox_client.get_managed_case_payments(case_id)
    assert len(payments) == 1
    result = run.xcom("pay")
    assert result["paymentId"] == str(payments[0].id)
    assert (Decimal(result["paymentAmount"]), Decimal(result["remainingAmount"]), result["caseClosed"]) == (
        40,
        60,
        False,
    )


def test_a_production_case_is_refused_before_sending(
    run_dag: Any, sandbox_client: DebituraClient, case_tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = str(sandbox_client.create_managed_case(invoice(None, isTest=False)).id)
    sent: list[str] = []
    monkeypatch.setattr(RecordTestPaymentOperator, "_send", lambda self, client, case_id, body: sent.append(case_id))

    run = run_dag("test_record_payment_production", conf={"case_id": production})

    assert run.states == {"pay": "failed"}
    assert sent == []


def _record(key: str, tag: str, **changes: Any) -> dict[str, Any]:
    return {"record_id": key, **invoice(tag, **{"creditorReference": f"{tag}-{key}", **changes})}


def test_bulk_referral_outcomes_and_idempotent_rerun(
    run_dag: Any, sandbox_client: DebituraClient, case_tag: str
) -> None:
    company = {"type": "Company", "name": "Nordlicht GmbH", "contactPerson": "Eva Berg", "countryAlpha2": "DE"}
    records = [
        _record("R1", case_tag),
        _record("R2", case_tag, debtor=company, currencyCode="EUR", amountToRecover=2500.0),
        _record("R3", case_tag, debtor={"type": "Person", "name": "No State", "countryAlpha2": "US"}),
        _record("R1", case_tag, amountToRecover=7.0),
        {**_record("R5", case_tag), "creditorReference": f"{case_tag}-R1"},
        _record("R6", case_tag, debtor={"type": "Person", "name": "Kim Lee", "countryAlpha2": "GB"}, isTest=False),
        _record("R7", case_tag, amountToRecover=0),
    ]
    before = managed_case_count(sandbox_client)

    first = run_dag("test_refer_invoices", conf={"records": records, "tag": case_tag})

    outcomes = first.xcom("refer")
    assert [o["recordKey"] for o in outcomes] == ["R1", "R2", "R3", "R1", "R5", "R6", "R7"]
    assert [o["status"] for o in outcomes] == [
        "created",
        "created",
        "rejected",
        "rejected",
        "rejected",
        "created",
        "rejected",
    ]
    assert first.xcom("count") == {"created": 3, "rejected": 4}
    assert outcomes[2]["fieldErrors"] == {
        "debtor.stateAlpha2": ["a US debtor needs its state (e.g. 'CA'), which decides the jurisdiction"]
    }
    assert outcomes[3]["reason"] == "duplicate of R1 in this batch"
    assert outcomes[4]["reason"] == "duplicate of R1 in this batch"
    assert "amountToRecover" in outcomes[6]["fieldErrors"]
    assert all(o["caseId"] is None and not o["retryable"] for o in outcomes if o["status"] == "rejected")
    created = {o["recordKey"]: o for o in outcomes if o["status"] == "created"}
    assert managed_case_count(sandbox_client) == before + 3
    case = sandbox_client.get_managed_case(created["R6"]["caseId"])
    assert case.is_test_case  # is_test=True overrides the record
    assert (created["R2"]["currency"], Decimal(created["R2"]["remainder"])) == ("EUR", 2500)
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    shown = RenderedTaskInstanceFields.get_templated_fields(first.ti("refer")) or {}
    assert shown["records"]["recordKeys"] == ["R1", "R2", "R3", "R1", "R5", "R6", "R7"]  # keys, not the records
    assert "Nordlicht" not in str(shown) and "Eva Berg" not in str(shown)

    known = {key: o["caseId"] for key, o in created.items()}  # what a ledger holds after the first run
    second = run_dag("test_refer_invoices", conf={"records": records, "tag": case_tag, "known_cases": known})

    again = second.xcom("refer")
    assert [o["status"] for o in again] == [
        "existing",
        "existing",
        "rejected",
        "rejected",
        "rejected",
        "existing",
        "rejected",
    ]
    assert {o["recordKey"]: o["caseId"] for o in again if o["caseId"]} == {k: o["caseId"] for k, o in created.items()}
    assert managed_case_count(sandbox_client) == before + 3


class FailsFirst:
    """Edge middleware: answers 503 to the first ``times`` referrals whose body holds ``marker``.

    It sits outside idempotency, so to Debitura those requests never arrived (like a dead network).
    """

    def __init__(self, marker: str, times: int) -> None:
        self.marker = marker.encode()
        self.left = times

    def __call__(self, app: Any) -> Any:
        async def maybe_fail(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or (scope["method"], scope["path"]) != ("POST", "/managed-cases"):
                await app(scope, receive, send)
                return
            messages = [await receive()]
            while messages[-1].get("more_body"):
                messages.append(await receive())
            if self.left > 0 and self.marker in b"".join(m.get("body", b"") for m in messages):
                self.left -= 1
                await send(
                    {"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"application/json")]}
                )
                await send({"type": "http.response.body", "body": b'{"businessErrors": [{"type": "Unavailable"}]}'})
                return
            pending = iter(messages)

            async def replay() -> Any:
                return next(pending, None) or await receive()

            await app(scope, replay, send)

        return maybe_fail


class PushedXCom:
    """The one thing the bulk operator asks of its task instance, to run it without a scheduler."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _point_default_connection(monkeypatch: pytest.MonkeyPatch, server: Any, key: str | None = None) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEBITURA_DEFAULT",
        json.dumps(
            {
                "conn_type": "debitura",
                "host": server.base_url,
                "password": key or server.api_key,
                "extra": {"max_attempts": 2, "rate_limit_per_minute": 0},
            }
        ),
    )


def test_records_that_could_not_be_sent_fail_the_try_retryably(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [_record("R1", "flaky"), _record("R2", "flaky", creditorReference="FLAKY-2"), _record("R3", "flaky")]
    with sandbox_factory(edge_middleware=(FailsFirst("FLAKY", times=2),)) as server:
        _point_default_connection(monkeypatch, server)
        ti = PushedXCom()
        operator = ReferInvoicesOperator(task_id="refer", records=records, max_concurrency=2)
        with pytest.raises(AirflowException, match=r"1 of 3 record.*retry the task") as failure:
            operator.execute({"ti": ti})  # type: ignore[arg-type]
        assert not isinstance(failure.value, AirflowFailException)
        outcomes = ti.pushed["outcomes"]
        assert [(o["status"], o["retryable"]) for o in outcomes] == [
            ("created", False),
            ("failed", True),
            ("created", False),
        ]
        assert "503" in outcomes[1]["reason"]

        retried = operator.execute({"ti": PushedXCom()})  # type: ignore[arg-type]

        assert retried[1]["status"] == "created"  # R1 and R3 replay (labelled by how long ago they were made)
        assert [o["caseId"] for o in retried][::2] == [o["caseId"] for o in outcomes][::2]
        with DebituraClient(server.api_key, server.base_url) as client:
            assert managed_case_count(client) == 3


def test_a_refused_key_stops_the_batch_for_good(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_key = "not-this-one-8812"
    records = [_record(f"R{i}", "auth") for i in range(5)]
    with sandbox_factory() as server:
        _point_default_connection(monkeypatch, server, key=wrong_key)
        ti = PushedXCom()
        with pytest.raises(AirflowFailException, match=r"5 of 5 record.*not retryable") as failure:
            ReferInvoicesOperator(task_id="refer", records=records, max_concurrency=1).execute({"ti": ti})  # type: ignore[arg-type]
    outcomes = ti.pushed["outcomes"]
    assert outcomes[0]["reason"].startswith("Debitura answered 401")
    assert all(o["reason"].startswith("not sent: Debitura answered 401") for o in outcomes[1:])
    assert wrong_key not in str(failure.value) and wrong_key not in json.dumps(outcomes)


def test_a_retried_bulk_referral_under_airflow_resends_only_what_failed(
    run_dag: Any, sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow retries the task (retries=1): the second try sends R2 alone. The state that says so is
    ``task_state_store`` on 3.3+ and Airflow Variables before (``debitura_provider.compat``)."""
    from tests.fixtures.resilience import RequestLog

    log = RequestLog()
    records = [_record("R1", "retry"), _record("R2", "retry", creditorReference="FLAKY-2"), _record("R3", "retry")]
    with sandbox_factory(edge_middleware=(log.middleware, FailsFirst("FLAKY", times=2))) as server:
        _point_default_connection(monkeypatch, server)

        run = run_dag("test_refer_invoices", conf={"records": records, "tag": "retry"})

        assert run.states == {"refer": "success", "count": "success"}
        assert run.ti("refer").try_number == 2
        sent = [json.loads(body).get("creditorReference") for body in log.bodies("POST", "/managed-cases")]
        first, flaky, third = (records[i]["creditorReference"] for i in range(3))
        assert (sent.count(first), sent.count(flaky), sent.count(third)) == (1, 3, 1)  # R2: 2 tries, then the retry
        assert [o["status"] for o in run.xcom("refer")] == ["created", "created", "created"]
        with DebituraClient(server.api_key, server.base_url) as client:
            assert managed_case_count(client) == 3
