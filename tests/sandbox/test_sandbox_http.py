"""The HTTP edge: authentication, malformed input, unknown routes, idempotency keys and rate limits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from debitura_provider.sandbox import RateLimitSettings, SandboxServer
from debitura_provider.sandbox.edge.ratelimit import RateLimiter
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.helpers import case_body, client, new_test_case, verified

SOME_ID = "6f1c2a9e-3b7d-4c1e-9a2f-0d8e7b6a5c4d"


def assert_api_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """An ``ApiErrorResponseDto`` answer with this status, and no trace of a stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) <= {"error", "message", "businessErrors"}
    assert "Traceback" not in response.text
    return body


def assert_field_errors(response: httpx.Response, field: str) -> dict[str, list[str]]:
    """A 400 ``ValidationProblemDetails`` whose field map names ``field`` (API-NOTES §7.1.3)."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"type", "title", "status", "errors"}, body
    assert body["status"] == 400
    assert "Traceback" not in response.text
    errors: dict[str, list[str]] = body["errors"]
    assert field in errors and all(isinstance(m, str) and m for m in errors[field]), body
    return errors


def test_missing_or_unknown_keys_get_401_problem_details(sandbox: SandboxServer) -> None:
    for headers in ({}, {"XApiKey": "not-a-key"}, {"XApiKey": ""}):
        response = httpx.get(f"{sandbox.base_url}/managed-cases", headers=headers)
        assert response.status_code == 401
        assert response.json()["title"] == "Unauthorized"
        assert response.json()["instance"] == "/managed-cases"


def test_unknown_routes_get_a_json_404(api: httpx.Client) -> None:
    body = assert_api_error(api.get("/v1/cases"), 404)
    assert body["message"] == "No such endpoint: GET /v1/cases"


@pytest.mark.parametrize(
    ("request_args", "field"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, "body"),
        ({"content": b'{"amountToRecover": NaN}', "headers": {"Content-Type": "application/json"}}, "body"),
        ({"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, "body"),
        (
            {"content": b"creditorCompanyName=Acme", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            "body",
        ),
        ({"content": b"", "headers": {"Content-Type": "application/json"}}, "body"),
        ({"json": [1, 2, 3]}, "body"),
        ({"json": case_body(amountToRecover="lots")}, "amountToRecover"),
        ({"json": case_body(amountToRecover=-5)}, "amountToRecover"),
        ({"json": case_body(amountToRecover=1e300)}, "amountToRecover"),
        ({"json": case_body(currencyCode="EURO")}, "currencyCode"),
        ({"json": case_body(date="2999-01-01")}, "date"),
        ({"json": case_body(tag="x" * 101)}, "tag"),
        ({"json": case_body(isTestCase=True)}, "body"),
        ({"json": case_body(debtor={"type": "Robot", "name": "R2"})}, "debtor.type"),
        ({"json": case_body(surprise=1)}, "surprise"),
    ],
)
def test_malformed_bodies_get_400_naming_the_field(api: httpx.Client, request_args: dict[str, Any], field: str) -> None:
    assert_field_errors(api.post("/managed-cases", **request_args), field)


def test_json_media_types_of_the_spec_are_accepted(api: httpx.Client) -> None:
    import json

    for media_type in ("text/json", "application/json-patch+json", "application/vnd.debitura+json; charset=utf-8"):
        response = api.post("/managed-cases", content=json.dumps(case_body()), headers={"Content-Type": media_type})
        assert response.status_code == 200, media_type


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/managed-cases/not-a-uuid", 400),
        ("GET", "/cases/12345/timeline", 400),
        ("DELETE", f"/cases/{SOME_ID}/payments/nope", 400),
        ("POST", "/test/cases/nope/replay-last-event", 400),
        ("GET", "/webhooks/nope", 404),
        ("DELETE", "/webhooks/nope", 404),
        ("GET", "/ingestion-jobs/nope", 404),
        ("GET", "/managed-cases?Page=first", 400),
        ("GET", "/managed-cases?Ids=nope", 400),
        ("GET", "/cases?includeTestCases=maybe", 400),
        ("GET", "/webhooks/events", 400),
        ("GET", f"/webhooks/events?caseId={SOME_ID}&since=yesterday", 400),
        ("DELETE", f"/managed-cases/{SOME_ID}/payments/{SOME_ID}?reopenCaseIfNeeded=perhaps", 400),
        ("GET", "/cases/by-partner-reference", 400),
        ("GET", "/cases/by-creditor-reference?reference=x&creditorId=nope", 400),
        ("GET", "/users?PageSize=0", 400),
        ("POST", f"/cases/{SOME_ID}/files", 404),
    ],
)
def test_bad_ids_and_query_values_get_the_documented_status(
    api: httpx.Client, method: str, path: str, status: int
) -> None:
    response = api.request(method, path)
    if status == 400:
        assert set(response.json()) == {"type", "title", "status", "errors"}, response.text  # a field map
    else:
        assert_api_error(response, status)


def test_file_uploads_check_type_size_and_fields(api: httpx.Client) -> None:
    case = new_test_case(api)
    verified(api, case["id"])
    url = f"/cases/{case['id']}/files"
    assert_api_error(api.post(url, json={"File": "x"}), 415)
    assert_field_errors(api.post(url, files={"Other": ("a.pdf", b"x")}), "File")
    assert_field_errors(api.post(url, files={"File": ("a.pdf", b"x")}, data={"DocumentType": "Selfie"}), "DocumentType")
    assert_field_errors(api.post(url, files={"File": ("a.pdf", b"x")}, data={"Description": "d" * 501}), "Description")
    assert_api_error(api.post(url, files={"File": ("big.pdf", b"\0" * (25 * 1024 * 1024 + 1))}), 413)
    assert api.post(url, files={"file": ("ok.csv", b"a,b")}).status_code == 200


# --- Idempotency-Key ---------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_first_answer(api: httpx.Client) -> None:
    body = case_body(tag="idem-replay")
    first = api.post("/managed-cases", json=body, headers={"Idempotency-Key": "replay-1"})
    again = api.post("/managed-cases", json=dict(reversed(list(body.items()))), headers={"Idempotency-Key": "replay-1"})
    assert (again.status_code, again.content) == (first.status_code, first.content)
    ids = api.get("/managed-cases", params={"Ids": first.json()["id"]}).json()["page"]["totalResults"]
    assert ids == 1
    other_key = api.post("/managed-cases", json=body, headers={"Idempotency-Key": "replay-2"})
    assert other_key.json()["id"] != first.json()["id"]


def test_the_same_key_with_another_body_is_a_conflict(api: httpx.Client) -> None:
    api.post("/managed-cases", json=case_body(), headers={"Idempotency-Key": "conflict-1"})
    response = api.post(
        "/managed-cases", json=case_body(amountToRecover=5.0), headers={"Idempotency-Key": "conflict-1"}
    )
    assert response.status_code == 422
    assert response.json()["businessErrors"][0]["type"] == "IdempotencyConflict"


def test_a_400_is_not_stored_so_the_fixed_request_may_reuse_the_key(api: httpx.Client) -> None:
    bad = api.post("/managed-cases", json=case_body(currencyCode="???"), headers={"Idempotency-Key": "fix-me"})
    assert bad.status_code == 400
    fixed = api.post("/managed-cases", json=case_body(), headers={"Idempotency-Key": "fix-me"})
    assert fixed.status_code == 200
    assert api.post("/managed-cases", json=case_body(), headers={"Idempotency-Key": "k" * 256}).status_code == 400


def test_keys_are_scoped_per_partner_and_path(sandbox: SandboxServer, api: httpx.Client) -> None:
    case = new_test_case(api)
    api.post(f"/test/cases/{case['id']}/advance", json={"to": "Active"})
    payment = {"date": "2026-02-01", "paymentAmount": 10.0, "paymentRecipient": "CollectionPartner"}
    first = api.post(f"/cases/{case['id']}/payments", json=payment, headers={"Idempotency-Key": "shared"})
    replay = api.post(f"/cases/{case['id']}/payments", json=payment, headers={"Idempotency-Key": "shared"})
    assert replay.json()["paymentId"] == first.json()["paymentId"]
    conflict = api.post(
        f"/cases/{case['id']}/payments", json={**payment, "paymentAmount": 11.0}, headers={"Idempotency-Key": "shared"}
    )
    assert conflict.status_code == 422
    assert conflict.json()["businessErrors"][0]["type"] == "IdempotencyConflict"
    assert len(api.get(f"/cases/{case['id']}/payments").json()) == 1
    assert api.post("/managed-cases", json=case_body(), headers={"Idempotency-Key": "shared"}).status_code == 200


def test_chat_keys_are_scoped_per_message(api: httpx.Client) -> None:
    case = new_test_case(api)
    verified(api, case["id"])
    email = api.get("/users").json()["users"][0]["email"]
    url = f"/cases/{case['id']}/chats"
    hello = api.post(url, json={"message": "Hello", "userEmail": email}, headers={"Idempotency-Key": "chat"}).json()
    again = api.post(url, json={"message": "Hello", "userEmail": email}, headers={"Idempotency-Key": "chat"}).json()
    other = api.post(url, json={"message": "Bye", "userEmail": email}, headers={"Idempotency-Key": "chat"})
    assert hello["id"] == again["id"]
    assert other.status_code == 200
    assert [c["message"] for c in api.get(url).json()] == ["Hello", "Bye"]


class Gate:
    """A handler middleware that holds ``POST /managed-cases`` until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, app: ASGIApp) -> Callable[[Scope, Receive, Send], Any]:
        async def gated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/managed-cases":
                self.entered.set()
                await asyncio.to_thread(self.opened.wait, 30)
            await app(scope, receive, send)

        return gated


def test_a_key_still_in_flight_gets_409(sandbox_factory: SandboxFactory) -> None:
    gate = Gate()
    with sandbox_factory(handler_middleware=(gate,)) as server, client(server) as api:
        results: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: results.append(
                api.post("/managed-cases", json=case_body(), headers={"Idempotency-Key": "slow"})
            )
        )
        first.start()
        assert gate.entered.wait(30)
        with client(server) as second:
            busy = second.post("/managed-cases", json=case_body(), headers={"Idempotency-Key": "slow"})
        gate.opened.set()
        first.join(30)
    assert busy.status_code == 409
    assert busy.headers["Retry-After"] == "1"
    assert results[0].status_code == 200


# --- rate limits -----------------------------------------------------------------------------------


def test_over_the_limit_answers_429_with_retry_after_in_the_body(sandbox_factory: SandboxFactory) -> None:
    limits = RateLimitSettings(per_minute=3, per_hour=100, per_day=1000)
    with sandbox_factory(rate_limits=True, limits=limits) as server, client(server) as api:
        assert [api.get("/me").status_code for _ in range(3)] == [200, 200, 200]
        refused = api.get("/me")
        assert refused.status_code == 429
        body = refused.json()
        assert (body["error"], body["message"]) == (
            "rate_limit_exceeded",
            "Too many requests. Please try again later or contact support if you need higher limits.",
        )
        assert 0 < body["retryAfter"] <= 60
        assert "Retry-After" not in refused.headers
        with client(server, next(iter(server.partner_keys.values()))) as other:
            assert other.get("/me").status_code == 200, "limits are per key"
        assert httpx.get(server.portal_url).status_code == 200, "the portal is not the API"


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_minute_window_slides_in_ten_second_segments() -> None:
    clock = FakeTime(3600.0 * 10)
    limiter = RateLimiter(RateLimitSettings(per_minute=2, per_hour=100, per_day=100), clock)
    assert limiter.admit("k") is None
    clock.now += 30
    assert limiter.admit("k") is None
    assert limiter.admit("k") == pytest.approx(30.0)
    clock.now += 30
    assert limiter.admit("k") is None, "the first request's segment left the window"


def test_hour_and_day_windows() -> None:
    clock = FakeTime(3600.0 * 10 + 100)
    limiter = RateLimiter(RateLimitSettings(per_minute=100, per_hour=2, per_day=3), clock)
    assert limiter.admit("k") is None
    assert limiter.admit("k") is None
    assert limiter.admit("k") == pytest.approx(3500.0), "the hour is fixed on the clock"
    clock.now = 3600.0 * 11
    assert limiter.admit("k") is None
    assert limiter.admit("k") == pytest.approx(86400 - 3500.0), "the day runs from the first request"
    clock.now = 3600.0 * 10 + 100 + 86400
    assert limiter.admit("k") is None
