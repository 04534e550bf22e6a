"""Error bodies in every shape Debitura uses map to one hierarchy with actionable messages."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from debitura_provider.api import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    BusinessRuleError,
    ConfigurationError,
    ConflictError,
    DebituraClient,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from tests.api.conftest import BASE, KEY
from tests.api.samples import CASE_ID, CREATE_REQUEST

NO_PARTNER = {
    "businessErrors": [
        {
            "type": "NoPartnerAvailable",
            "message": "No collection partner available for this jurisdiction",
            "solutionUrl": "https://support.debitura.com/no-partner",
        }
    ],
    "signingHandoff": None,
}


@pytest.mark.parametrize(
    ("status", "body", "cls", "expect"),
    [
        (
            400,
            {"amount": ["Amount must be greater than zero"], "debtor.email": ["Invalid email format"]},
            BadRequestError,
            "debtor.email: Invalid email format",
        ),
        (
            400,
            {
                "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
                "title": "One or more validation errors occurred.",
                "status": 400,
                "errors": {"Debtor.Name": ["The Name field is required."]},
            },
            BadRequestError,
            "Debtor.Name: The Name field is required.",
        ),
        (
            400,
            {
                "error": "Validation failed",
                "message": "One or more fields are invalid",
                "businessErrors": [
                    {"type": "ValidationError", "message": "debtor.stateAlpha2: a US debtor needs its state"}
                ],
            },
            BadRequestError,
            "debtor.stateAlpha2: a US debtor needs its state",
        ),
        (
            401,
            {"type": "https://tools.ietf.org/html/rfc7235#section-3.1", "title": "Unauthorized", "status": 401},
            AuthenticationError,
            "current API key",
        ),
        (
            404,
            {"error": "Not found", "message": "Case not found", "businessErrors": []},
            NotFoundError,
            "Case not found",
        ),
        (
            409,
            {"error": "Conflict", "message": "A request with this Idempotency-Key is still being processed"},
            ConflictError,
            "still being processed",
        ),
        (422, NO_PARTNER, BusinessRuleError, "[NoPartnerAvailable]"),
        (
            422,
            {"businessErrors": [{"type": "IdempotencyConflict", "message": "Key reused with a different body"}]},
            BusinessRuleError,
            "IdempotencyConflict",
        ),
        (
            429,
            {"error": "rate_limit_exceeded", "message": "Too many requests.", "retryAfter": 9999},
            RateLimitError,
            "Too many requests",
        ),
        (
            500,
            {"businessErrors": [{"type": "InternalError", "message": "Unexpected error"}]},
            ServerError,
            "Unexpected error",
        ),
    ],
)
@respx.mock
def test_error_mapping(
    client: DebituraClient, status: int, body: dict[str, object], cls: type[ApiError], expect: str
) -> None:
    respx.post(f"{BASE}/managed-cases").respond(status, json=body)
    with pytest.raises(cls) as raised:
        client.create_managed_case(CREATE_REQUEST)
    error = raised.value
    assert error.status_code == status
    assert (error.method, error.path) == ("POST", "/managed-cases")
    assert expect in str(error)
    assert KEY not in str(error) and KEY not in repr(error)


@respx.mock
def test_business_errors_and_field_errors_are_structured(client: DebituraClient) -> None:
    respx.post(f"{BASE}/managed-cases").respond(422, json=NO_PARTNER)
    with pytest.raises(BusinessRuleError) as raised:
        client.create_managed_case(CREATE_REQUEST)
    assert raised.value.error_types == ["NoPartnerAvailable"]
    assert raised.value.business_errors[0].solution_url == "https://support.debitura.com/no-partner"
    assert "https://support.debitura.com/no-partner" in str(raised.value)


@pytest.mark.parametrize(
    "body",
    [
        {"debtor.email": ["Invalid email format"]},
        {"title": "Bad", "errors": {"debtor.email": ["Invalid email format"]}},
        {"businessErrors": [{"type": "ValidationError", "message": "debtor.email: Invalid email format"}]},
    ],
)
@respx.mock
def test_every_400_shape_yields_the_field_map(client: DebituraClient, body: dict[str, object]) -> None:
    respx.post(f"{BASE}/managed-cases").respond(400, json=body)
    with pytest.raises(BadRequestError) as raised:
        client.create_managed_case(CREATE_REQUEST)
    assert raised.value.field_errors == {"debtor.email": ["Invalid email format"]}


@respx.mock
def test_a_non_json_error_body_still_maps(client: DebituraClient) -> None:
    respx.get(f"{BASE}/me").respond(404, text="<html>not here</html>")
    with pytest.raises(NotFoundError):
        client.get_me()


@respx.mock
def test_api_key_never_logged_or_shown(client: DebituraClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    respx.get(f"{BASE}/me").mock(side_effect=[httpx.Response(503), httpx.Response(401, json={"title": "Unauthorized"})])
    with pytest.raises(AuthenticationError) as raised:
        client.get_me()
    assert KEY not in caplog.text
    assert KEY not in str(raised.value) and KEY not in repr(client) and KEY not in repr(client._auth)


def test_plain_http_outside_loopback_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="refusing plain http"):
        DebituraClient(KEY, "http://collectionpartner-api.debitura.com")
    for url in ("http://127.0.0.1:8642", "http://localhost:1", "http://[::1]:8642"):
        DebituraClient(KEY, url).close()


def test_turning_tls_verification_off_is_never_silent() -> None:
    with pytest.warns(UserWarning, match="verification is OFF"):
        DebituraClient(KEY, "https://collectionpartner-api.debitura.com", verify=False).close()


def test_an_empty_api_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="API key is required"):
        DebituraClient("", BASE)


@respx.mock
def test_not_found_message_says_what_to_check(client: DebituraClient) -> None:
    respx.get(f"{BASE}/managed-cases/{CASE_ID}").respond(404, json={"message": "Case not found"})
    with pytest.raises(NotFoundError, match="Check the id"):
        client.get_managed_case(CASE_ID)


@pytest.mark.parametrize(
    ("status", "sent_key", "retryable"),
    [
        (400, True, False),
        (401, False, False),
        (403, False, False),
        (404, False, False),
        (409, False, False),
        (409, True, True),
        (422, True, False),
        (429, False, True),
        (500, False, True),
        (503, True, True),
    ],
)
def test_each_error_says_once_whether_it_may_pass(status: int, sent_key: bool, retryable: bool) -> None:
    from debitura_provider.api.errors import error_from_response
    from debitura_provider.failures import is_transient

    error = error_from_response(httpx.Response(status), "POST", "/x", idempotency_key_sent=sent_key)
    assert error.retryable is retryable
    assert is_transient(error) is retryable  # the Airflow layer reads the same attribute


def test_every_exception_of_the_package_lives_in_errors_and_is_exported() -> None:
    import inspect

    import debitura_provider.api as api
    from debitura_provider.api import errors

    classes = {n for n, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)}
    classes = {n for n in classes if getattr(errors, n).__module__ == errors.__name__}
    assert classes <= set(api.__all__)
    assert all(name in (errors.__doc__ or "") for name in classes)  # the hierarchy names each one
    assert api.TransportError("GET", "/me", httpx.ConnectError("refused")).retryable is True
    assert not any(
        getattr(errors, n)("x").retryable
        for n in ("ConfigurationError", "ReceiverNotConfigured", "SignatureError", "EnvelopeError", "SecretStoreError")
    )
