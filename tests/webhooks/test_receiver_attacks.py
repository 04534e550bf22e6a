"""The receiver under attack (issue 7, part 5): nothing bad is recorded, nothing answers 500, no secret leaks.

Each test ends by delivering one valid "sentinel" event and waiting for its Asset event. The recorder
works oldest first, so once the sentinel is recorded anything accepted before it would be too: the
count of Asset events then proves what the attack did (nothing) without timing assumptions.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from debitura_provider.api.personal_data import event_envelope
from debitura_provider.api.webhooks import sign
from tests.fixtures.webhooks import Receiver, new_secret, wait_for_asset_events

pytestmark = [pytest.mark.airflow, pytest.mark.resilience]  # issue 7, part 5


def envelope(event: str = "payment.created", event_id: str | None = None, **data: Any) -> bytes:
    body = {
        "id": event_id or str(uuid.uuid4()),
        "specVersion": "1.0",
        "event": event,
        "timestamp": "2026-01-31T15:23:45Z",
        "data": {"caseId": str(uuid.uuid4()), "paymentId": str(uuid.uuid4()), "amount": 10.0, **data},
        "links": {"self": "https://collectionpartner-api.debitura.com/cases/x"},
    }
    return json.dumps(body).encode()


@pytest.fixture
def receiver(webhook_receiver: Receiver, caplog: pytest.LogCaptureFixture) -> Iterator[Receiver]:
    """The receiver; afterwards, no answer was a 500 and neither logs nor answers hold the secret."""
    caplog.set_level(logging.DEBUG)
    secrets = [webhook_receiver.secret]
    yield webhook_receiver
    secrets.append(webhook_receiver.secret)
    assert 500 not in [r.status_code for r in webhook_receiver.responses]
    for secret in secrets:
        assert all(secret not in r.text for r in webhook_receiver.responses)
        assert secret not in caplog.text


def recorded_after_sentinel(receiver: Receiver, expected_before: int) -> list[tuple[str, dict[str, Any]]]:
    """Deliver a valid event last and return all Asset events once it is recorded."""
    sentinel = str(uuid.uuid4())
    assert receiver.post(envelope(event_id=sentinel)).status_code == 202
    events = wait_for_asset_events(expected_before + 1)
    assert events[-1][1]["id"] == sentinel
    return events


def test_a_valid_delivery_becomes_one_asset_event(receiver: Receiver) -> None:
    body = envelope("case.closed", closeCode="Paid")
    response = receiver.post(body)
    assert response.status_code == 202
    assert response.json()["eventId"] == json.loads(body)["id"]
    [(asset, extra)] = wait_for_asset_events(1)
    assert asset == "debitura_case_lifecycle"
    assert extra == event_envelope(json.loads(body))  # the allow-listed fields only
    assert extra["data"]["closeCode"] == "Paid" and extra["data"]["caseId"] == json.loads(body)["data"]["caseId"]


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(lambda r, b: r.post(b, signature=f"t={int(time.time())},v1={'ab' * 32}"), id="forged"),
        pytest.param(lambda r, b: r.post(b, secret=new_secret()), id="wrong-secret"),
        pytest.param(lambda r, b: r.post(b, timestamp=int(time.time()) - 301), id="stale-301s"),
        pytest.param(lambda r, b: r.post(b, timestamp=int(time.time()) + 30), id="future-30s"),
        pytest.param(lambda r, b: r.post(b, signature=""), id="missing-header"),
        pytest.param(lambda r, b: r.post(b, signature="v1=abc"), id="malformed-header"),
    ],
)
def test_bad_signatures_get_401_and_record_nothing(receiver: Receiver, attack: Any) -> None:
    body = envelope()
    response = attack(receiver, body)
    assert response.status_code == 401
    assert recorded_after_sentinel(receiver, 0)[0][1]["id"] != json.loads(body)["id"]


def test_a_signature_over_other_bytes_gets_401(receiver: Receiver) -> None:
    body = envelope()
    assert receiver.post(body + b" ", signature=sign(receiver.secret, body)).status_code == 401
    assert len(recorded_after_sentinel(receiver, 0)) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{this is not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[]", "envelope"),
        (
            json.dumps({"id": "not-a-uuid", "event": "payment.created", "timestamp": "2026-01-31T15:23:45Z"}).encode(),
            "id",
        ),
        (json.dumps({"id": str(uuid.uuid4()), "event": "payment.created"}).encode(), "timestamp"),
    ],
)
def test_malformed_bodies_get_400_and_record_nothing(receiver: Receiver, body: bytes, reason: str) -> None:
    response = receiver.post(body)
    assert response.status_code == 400
    assert reason in response.json()["message"]
    assert len(recorded_after_sentinel(receiver, 0)) == 1


def test_a_10_mb_body_gets_400_without_being_recorded(receiver: Receiver) -> None:
    body = envelope(padding="x" * 10_000_000)
    assert receiver.post(body).status_code == 400

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while streaming
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    assert receiver.post(body, content=chunks()).status_code == 400
    assert len(recorded_after_sentinel(receiver, 0)) == 1


def test_a_replayed_event_id_is_accepted_once(receiver: Receiver) -> None:
    body = envelope()
    assert receiver.post(body).status_code == 202
    wait_for_asset_events(1)
    again = receiver.post(body)  # Debitura's redelivery: same bytes, new signature time
    assert again.status_code == 200
    assert again.json()["message"] == "event already accepted"
    assert receiver.post(body, timestamp=int(time.time()) - 5).status_code == 200
    events = recorded_after_sentinel(receiver, 1)
    assert [extra["id"] for _, extra in events].count(json.loads(body)["id"]) == 1
    assert len(events) == 2


def test_concurrent_redeliveries_are_recorded_once(receiver: Receiver) -> None:
    body = envelope("case.updated", oldLifecycle="Active", newLifecycle="Paused")
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(lambda _: receiver.post(body).status_code, range(8)))
    assert codes == [200] * 7 + [202]
    assert len(recorded_after_sentinel(receiver, 1)) == 2


def test_events_without_an_asset_are_acknowledged_not_recorded(receiver: Receiver) -> None:
    response = receiver.post(envelope("chat.created", message="hello"))
    assert response.status_code == 200
    assert len(recorded_after_sentinel(receiver, 0)) == 1


def test_a_receiver_without_a_secret_answers_503(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{receiver.conn_id.upper()}", json.dumps({"conn_type": "debitura"}))
    response = receiver.post(envelope())
    assert response.status_code == 503
    assert response.json()["message"] == "receiver not configured"


def test_the_secret_is_read_on_each_delivery(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    old = receiver.secret
    receiver.secret = new_secret()  # a re-key: the connection changes, the server keeps running
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{receiver.conn_id.upper()}",
        json.dumps({"conn_type": "debitura", "extra": {"webhook_secret": receiver.secret}}),
    )
    assert receiver.post(envelope(), secret=old).status_code == 401
    assert len(recorded_after_sentinel(receiver, 0)) == 1


def test_a_database_failure_answers_503_so_debitura_retries(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> bool:
        raise RuntimeError("database is gone")

    monkeypatch.setattr("debitura_provider.receiver.inbox.enqueue", broken)
    response = receiver.post(envelope())
    assert response.status_code == 503
    assert "database is gone" not in response.text
    monkeypatch.undo()


def test_a_slow_database_answers_503_within_the_deadline(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from debitura_provider.receiver.app import ReceiverSettings, create_app
    from tests.fixtures.webhooks import serve, stop

    secret = new_secret()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLOW_RECEIVER", json.dumps({"conn_type": "debitura", "extra": {"webhook_secret": secret}})
    )
    release = threading.Event()
    monkeypatch.setattr("debitura_provider.receiver.inbox.enqueue", lambda *args: release.wait(30))
    server, thread, base = serve(create_app(ReceiverSettings(conn_id="slow_receiver", enqueue_timeout=0.2)))
    try:
        response = Receiver(url=f"{base}/", conn_id="slow_receiver", secret=secret).post(envelope())
    finally:
        release.set()
        stop(server, thread)
    assert response.status_code == 503
    assert response.json()["message"] == "busy; retry later"
