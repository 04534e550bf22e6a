"""What is retried, how long it waits, and that a retried create reuses its idempotency key."""

from __future__ import annotations

import httpx
import pytest
import respx

from debitura_provider.api import (
    UNLIMITED,
    AsyncDebituraClient,
    ConflictError,
    DebituraClient,
    RateLimitError,
    RateLimits,
    RetryPolicy,
    ServerError,
    TransportError,
)
from debitura_provider.api.ratelimit import budget_for
from tests.api.conftest import BASE, KEY
from tests.api.samples import CASE, CASE_ID, CREATE_REQUEST

RATE_LIMITED = {
    "error": "rate_limit_exceeded",
    "message": "Too many requests. Please try again later or contact support if you need higher limits.",
    "retryAfter": 42.0,
}


@respx.mock
def test_get_is_retried_on_5xx_with_growing_jittered_backoff(client: DebituraClient, sleeps: list[float]) -> None:
    route = respx.get(f"{BASE}/managed-cases/{CASE_ID}").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(500, json={"businessErrors": []}),
            httpx.Response(200, json=CASE),
        ]
    )
    assert str(client.get_managed_case(CASE_ID).id) == CASE_ID
    assert route.call_count == 3
    assert len(sleeps) == 2 and all(0 < s <= 30 for s in sleeps)


@respx.mock
def test_429_waits_for_retry_after_from_the_body(client: DebituraClient, sleeps: list[float]) -> None:
    route = respx.get(f"{BASE}/me").mock(
        side_effect=[httpx.Response(429, json=RATE_LIMITED), httpx.Response(200, json={"id": CASE_ID})]
    )
    client.get_me()
    assert route.call_count == 2
    assert sleeps == [42.0]


@respx.mock
def test_429_falls_back_to_the_retry_after_header(client: DebituraClient, sleeps: list[float]) -> None:
    respx.get(f"{BASE}/me").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={"id": CASE_ID})]
    )
    client.get_me()
    assert sleeps == [7.0]


@respx.mock
def test_429_beyond_the_longest_wait_is_raised_not_slept(client: DebituraClient, sleeps: list[float]) -> None:
    respx.get(f"{BASE}/me").respond(429, json={**RATE_LIMITED, "retryAfter": 3600})
    with pytest.raises(RateLimitError) as raised:
        client.get_me()
    assert raised.value.retry_after == 3600
    assert sleeps == []


@respx.mock
def test_429s_do_not_use_up_attempts(sleeps: list[float]) -> None:
    """A refused request is not a failed one: more 429s than attempts are absorbed."""
    limited = httpx.Response(429, json={**RATE_LIMITED, "retryAfter": 2.0})
    route = respx.get(f"{BASE}/me").mock(side_effect=[limited] * 6 + [httpx.Response(200, json={"id": CASE_ID})])
    with DebituraClient(KEY, BASE, retry=RetryPolicy(attempts=2), rate_limits=UNLIMITED) as client:
        client.get_me()
    assert route.call_count == 7
    assert sleeps == [2.0] * 6


@respx.mock
def test_429s_are_raised_once_the_patience_is_spent(sleeps: list[float]) -> None:
    respx.get(f"{BASE}/me").respond(429, json={**RATE_LIMITED, "retryAfter": 2.0})
    policy = RetryPolicy(attempts=2, rate_limit_patience=5.0)
    with DebituraClient(KEY, BASE, retry=policy, rate_limits=UNLIMITED) as client, pytest.raises(RateLimitError):
        client.get_me()
    assert sleeps == [2.0, 2.0]


@respx.mock
def test_a_429_holds_the_whole_key_budget(sleeps: list[float]) -> None:
    """Other requests of the same key wait out retryAfter too, instead of collecting their own 429s."""
    key, limits = "unit-test-key-hold-429", RateLimits(per_minute=1_000)
    respx.get(f"{BASE}/me").mock(
        side_effect=[
            httpx.Response(429, json={**RATE_LIMITED, "retryAfter": 30.0}),
            httpx.Response(200, json={"id": CASE_ID}),
        ]
    )
    with DebituraClient(key, BASE, rate_limits=limits) as client:
        client.get_me()
    assert budget_for(BASE, key, limits).reserve() > 25.0


@respx.mock
def test_create_is_retried_with_the_same_idempotency_key(client: DebituraClient) -> None:
    route = respx.post(f"{BASE}/managed-cases").mock(
        side_effect=[httpx.ReadTimeout("lost"), httpx.Response(502), httpx.Response(200, json=CASE)]
    )
    client.create_managed_case(CREATE_REQUEST)
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    assert route.call_count == 3 and len(keys) == 1


def test_idempotency_key_is_derived_from_the_request() -> None:
    from debitura_provider.api import endpoints

    first = endpoints.create_managed_case(CREATE_REQUEST).idempotency_key
    again = endpoints.create_managed_case(dict(CREATE_REQUEST)).idempotency_key
    other = endpoints.create_managed_case({**CREATE_REQUEST, "amountToRecover": 1.0}).idempotency_key
    given = endpoints.create_managed_case(CREATE_REQUEST, idempotency_key="run-1/task-2").idempotency_key
    assert first == again != other
    assert given == "run-1/task-2"


@respx.mock
def test_post_without_idempotency_key_is_not_retried_after_it_may_have_been_processed(
    client: DebituraClient,
) -> None:
    route = respx.post(f"{BASE}/managed-cases/{CASE_ID}/payments").mock(side_effect=httpx.ReadTimeout("lost"))
    with pytest.raises(TransportError):
        client.record_test_payment(CASE_ID, {"date": "2026-11-21", "paymentAmount": 10})
    assert route.call_count == 1

    route.side_effect = [httpx.Response(503)]
    with pytest.raises(ServerError):
        client.record_test_payment(CASE_ID, {"date": "2026-11-21", "paymentAmount": 10})
    assert route.call_count == 2


@respx.mock
def test_post_without_key_is_retried_when_the_connection_was_refused(client: DebituraClient) -> None:
    route = respx.post(f"{BASE}/managed-cases/{CASE_ID}/payments").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={"caseReference": "Q8OAXF3W"})]
    )
    client.record_test_payment(CASE_ID, {"date": "2026-11-21", "paymentAmount": 10})
    assert route.call_count == 2


@respx.mock
def test_gives_up_after_the_configured_attempts(client: DebituraClient) -> None:
    route = respx.get(f"{BASE}/me").respond(503)
    with pytest.raises(ServerError) as raised:
        client.get_me()
    assert route.call_count == 4
    assert raised.value.status_code == 503


@respx.mock
def test_4xx_is_never_retried(client: DebituraClient) -> None:
    route = respx.get(f"{BASE}/managed-cases/{CASE_ID}").respond(
        404, json={"error": "Not found", "message": "Case not found"}
    )
    with pytest.raises(Exception):  # noqa: B017 - the exact class is tested in test_errors
        client.get_managed_case(CASE_ID)
    assert route.call_count == 1


@respx.mock
async def test_async_client_retries_the_same_way(aclient: AsyncDebituraClient, sleeps: list[float]) -> None:
    route = respx.post(f"{BASE}/managed-cases").mock(
        side_effect=[httpx.Response(429, json=RATE_LIMITED), httpx.ConnectError("x"), httpx.Response(200, json=CASE)]
    )
    await aclient.create_managed_case(CREATE_REQUEST)
    assert route.call_count == 3
    assert sleeps[0] == 42.0
    assert len({c.request.headers["Idempotency-Key"] for c in route.calls}) == 1


@respx.mock
def test_a_409_for_a_key_still_in_flight_is_retried_with_the_same_key(
    client: DebituraClient, sleeps: list[float]
) -> None:
    busy = httpx.Response(409, json={"message": "still being processed"}, headers={"Retry-After": "1"})
    route = respx.post(f"{BASE}/managed-cases").mock(side_effect=[busy, httpx.Response(200, json=CASE)])
    client.create_managed_case(CREATE_REQUEST)
    assert route.call_count == 2 and sleeps == [1.0]
    assert len({call.request.headers["Idempotency-Key"] for call in route.calls}) == 1


@respx.mock
def test_a_409_that_needs_another_request_is_not_retried(client: DebituraClient) -> None:
    confirm = {"caseId": CASE_ID, "confirmationRequired": True, "proposedSuccessFee": 30.0}
    route = respx.put(f"{BASE}/cases/{CASE_ID}/fees").respond(409, json=confirm)
    with pytest.raises(ConflictError) as raised:
        client.update_case_fees(CASE_ID, {"grossAmount": 2000})
    assert route.call_count == 1 and not raised.value.retryable
