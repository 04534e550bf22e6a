"""From a sandbox test case to a queued DAG: the sandbox signs and delivers, Airflow records and schedules.

Airflow's real API server app (``create_app``, which mounts the plugin's receiver and enters its
lifespan) is served by uvicorn on 127.0.0.1, on the migrated sqlite DB. ``debitura-webhooks create``
subscribes it on the sandbox in test mode and stores the secret in a DB connection; then a test case
is made Active, paid, and closed as Paid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from debitura_provider.api import DebituraClient
from debitura_provider.api.personal_data import event_envelope
from debitura_provider.assets import DEBITURA_PAYMENTS
from debitura_provider.receiver.cli import main as webhooks_cli
from tests.fixtures.example_dags import ExampleSetup
from tests.fixtures.webhooks import debitura_asset_events, serve, stop

pytestmark = pytest.mark.airflow

SECRET_CONN_ID = "debitura_webhooks"
PAYMENT_DAG = "debitura_portfolio"


def wait_until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """``check()``'s first truthy result; fails after ``timeout`` seconds (a deadline, not an assertion on time)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {check.__doc__ or check}")
        time.sleep(0.1)
    return result


@pytest.fixture(scope="module")
def airflow_api(example_setup: ExampleSetup) -> Iterator[str]:
    """Airflow's API server app with the Debitura plugin, its receiver reading ``debitura_webhooks``."""
    from airflow.api_fastapi.app import create_app

    from debitura_provider.receiver.plugin import DebituraWebhookPlugin
    from tests.fixtures.webhooks import clear_webhook_records

    receiver = DebituraWebhookPlugin.fastapi_apps[0]["app"]
    configured = receiver.state.settings
    receiver.state.settings = dataclasses.replace(configured, conn_id=SECRET_CONN_ID, record_interval=1.0)
    clear_webhook_records()
    server, thread, base = serve(create_app("core"))
    try:
        yield base
    finally:
        stop(server, thread)
        receiver.state.settings = configured


@pytest.fixture(scope="module")
def payment_dag_queued_on_events(airflow_dags: dict[str, Any]) -> Any:
    """The payment DAG serialized into the DB (one run by hand, with no events yet) and unpaused."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    first = airflow_dags[PAYMENT_DAG].test()
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == PAYMENT_DAG).values(is_paused=False))
    return first


@dataclasses.dataclass
class Delivered:
    case_id: str
    client: DebituraClient
    subscription_id: str
    cli_output: str


@pytest.fixture(scope="module")
def delivered(airflow_api: str, example_setup: ExampleSetup, payment_dag_queued_on_events: Any) -> Iterator[Delivered]:
    """Subscribe, then drive a test case: Active, a payment of 100, Closed:Paid (which pays the rest)."""
    sandbox = example_setup.sandbox
    client = DebituraClient(api_key=sandbox.api_key, base_url=sandbox.base_url)
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        assert (
            webhooks_cli(
                [
                    "create",
                    "--url",
                    f"{airflow_api}/debitura/webhooks",
                    "--test-mode",
                    "--secret-conn-id",
                    SECRET_CONN_ID,
                ]
            )
            == 0
        )
    [subscription] = [s for s in client.list_webhooks() if s.url == f"{airflow_api}/debitura/webhooks"]
    case = client.create_managed_case(
        {
            "creditorCompanyName": "Nordlys Consulting ApS",
            "creditorCountryAlpha2": "DK",
            "currencyCode": "EUR",
            "amountToRecover": 1000.0,
            "date": "2026-09-01",
            "dueDate": "2026-09-30",
            "creditorReference": "WH-1",
            "isTest": True,
            "tag": "webhooks-e2e",
            "debtor": {
                "type": "Company",
                "name": "Bergmann GmbH",
                "contactPerson": "Jonas Bergmann",
                "countryAlpha2": "DE",
                "city": "Hamburg",
                "email": "ap@bergmann.example",
            },
        }
    )
    case_id = str(case.id)
    client.advance_test_case(case_id, {"to": "Active"})
    client.record_test_payment(case_id, {"date": "2026-11-20", "paymentAmount": 100.0})
    client.advance_test_case(case_id, {"to": "Closed:Paid", "amount": 900.0})
    try:
        yield Delivered(case_id, client, str(subscription.id), output.getvalue())
    finally:
        client.delete_webhook(str(subscription.id))
        client.close()


def delivered_payloads(d: Delivered) -> list[dict[str, Any]] | None:
    """What the sandbox's delivery log holds for the case, once every row was answered with a 2xx."""
    rows = d.client.list_webhook_events(d.case_id)
    if not all(r.last_response_code in (200, 202) for r in rows):
        return None
    return [json.loads(r.payload or "{}") for r in rows]


def all_recorded(d: Delivered) -> list[tuple[str, dict[str, Any]]]:
    def done() -> list[tuple[str, dict[str, Any]]] | None:
        """every event of the case delivered, answered 2xx and recorded as an Asset event"""
        payloads = delivered_payloads(d) or []
        kinds = sorted(p["event"] for p in payloads)
        if kinds.count("payment.created") < 2 or "case.closed" not in kinds:
            return None
        events = [e for e in debitura_asset_events() if e[1]["data"].get("caseId") == d.case_id]
        return events if len(events) == len(payloads) else None

    return wait_until(done)


def test_the_secret_is_stored_in_the_connection_and_shown_nowhere(delivered: Delivered) -> None:
    from airflow.models.connection import Connection

    secret = Connection.get_connection_from_secrets(SECRET_CONN_ID).extra_dejson["webhook_secret"]
    assert len(secret) >= 32
    assert secret not in delivered.cli_output
    assert "stored in connection 'debitura_webhooks'" in delivered.cli_output


def test_each_delivered_event_is_one_asset_event_with_its_envelope(delivered: Delivered) -> None:
    events = all_recorded(delivered)
    payloads = {p["id"]: p for p in delivered_payloads(delivered) or []}
    assert sorted(extra["id"] for _, extra in events) == sorted(payloads)
    for asset, extra in events:
        assert extra == event_envelope(payloads[extra["id"]])  # the allow-listed fields, as delivered
        expected = "debitura_payments" if extra["event"].startswith("payment.") else "debitura_case_lifecycle"
        assert asset == expected
    kinds = sorted(extra["event"] for _, extra in events)
    assert kinds.count("payment.created") == 2
    assert kinds.count("case.closed") == 1
    assert "case.updated" in kinds
    closed = next(extra for _, extra in events if extra["event"] == "case.closed")
    assert closed["data"]["closeCode"] == "Paid"
    amounts = sorted(extra["data"]["amount"] for _, extra in events if extra["event"] == "payment.created")
    assert amounts == [100.0, 900.0]


def test_the_payment_dag_is_queued(delivered: Delivered) -> None:
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    all_recorded(delivered)
    with create_session() as session:
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id)
            .join(AssetModel, AssetModel.id == AssetDagRunQueue.asset_id)
            .where(AssetModel.name == DEBITURA_PAYMENTS.name, AssetModel.uri == DEBITURA_PAYMENTS.uri)
        ).all()
    assert PAYMENT_DAG in queued


def test_a_replayed_delivery_records_nothing_new(delivered: Delivered) -> None:
    before = all_recorded(delivered)
    row = next(r for r in delivered.client.list_webhook_events(delivered.case_id) if r.event_type == "payment.created")
    delivered.client.replay_webhook_event(str(row.id))

    def answered_again() -> bool:
        """the replay of the payment event answered 200 (already accepted)"""
        again = next(r for r in delivered.client.list_webhook_events(delivered.case_id) if r.id == row.id)
        return again.attempt_count > row.attempt_count and again.last_response_code == 200

    wait_until(answered_again)
    assert [e for e in debitura_asset_events() if e[1]["data"].get("caseId") == delivered.case_id] == before


def test_the_payment_dag_notifies_the_crm_and_refreshes_the_ledger(
    delivered: Delivered, airflow_dags: dict[str, Any]
) -> None:
    from agency_crm.db import ensure_schema, rows, transaction

    all_recorded(delivered)
    with transaction() as connection:
        ensure_schema(connection)
        [invoice] = rows(connection, "SELECT invoice_id, client_id FROM invoices ORDER BY invoice_id LIMIT 1")
        connection.exec_driver_sql(
            "INSERT INTO referral_ledger (record_key, batch_id, status, case_id, currency, amount_referred, "
            "amount_collected, remainder, updated_at) VALUES (?, 'webhooks-e2e', 'created', ?, 'EUR', 1000, 0, 1000, "
            "'2026-11-20T00:00:00+00:00') ON CONFLICT (record_key) DO UPDATE SET case_id = excluded.case_id",
            (invoice["invoice_id"], delivered.case_id),
        )

    first = airflow_dags[PAYMENT_DAG].test()
    second = airflow_dags[PAYMENT_DAG].test()  # a re-run: the same events again

    assert str(first.state) == str(second.state) == "success"
    with transaction() as connection:
        notes = rows(
            connection, "SELECT * FROM payment_notifications WHERE case_id = :c ORDER BY amount", c=delivered.case_id
        )
        [ledger] = rows(connection, "SELECT * FROM referral_ledger WHERE case_id = :c", c=delivered.case_id)
    assert [(n["event_type"], float(n["amount"]), n["currency"]) for n in notes] == [
        ("payment.created", 100.0, "EUR"),
        ("payment.created", 900.0, "EUR"),
    ]
    assert {(n["record_key"], n["client_id"]) for n in notes} == {(invoice["invoice_id"], invoice["client_id"])}
    assert float(ledger["amount_collected"]) == 1000.0
    assert float(ledger["remainder"]) == 0.0
    assert (ledger["lifecycle"], ledger["close_code"]) == ("Closed", "Paid")
    assert ledger["last_payment_date"] is not None
    assert "payment.created" in ledger["last_event"]
    second_result = second.get_task_instance("follow_cases").xcom_pull(task_ids="follow_cases")
    assert second_result["new_notifications"] == 0
