"""Signing and verification against vectors computed outside ``api.webhooks``, and envelope parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest

from debitura_provider.api.webhooks import (
    CaseClosedData,
    CaseUpdatedData,
    EnvelopeError,
    EventData,
    PaymentData,
    SignatureError,
    parse_event,
    sign,
    signature,
    verify,
)

VECTOR_KEY = b"debitura-test-vector-key-32bytes"
VECTOR_SECRET = "ZGViaXR1cmEtdGVzdC12ZWN0b3Ita2V5LTMyYnl0ZXM="
VECTOR_BODY = b'{"id":"550e8400-e29b-41d4-a716-446655440000","event":"payment.created"}'
VECTOR_T = 1769873025

# Computed with `openssl dgst -sha256 -hmac`, not with Python: HMAC-SHA256(key, "{t}.{body}") as lowercase hex.
KNOWN_VECTORS = [
    (VECTOR_SECRET, VECTOR_T, VECTOR_BODY, "f6f7688622c031ecb0f643a9d3a4c0b72dde8849958f84c331c349f719e074bf"),
    (base64.b64encode(bytes(32)).decode(), 0, b"", "b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"),
]


def independent_v1(secret_b64: str, timestamp: int, body: bytes) -> str:
    """The documented algorithm written out again (API-NOTES §6.4)."""
    return hmac.new(base64.b64decode(secret_b64), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def test_vector_secret_is_the_key_in_base64() -> None:
    assert base64.b64decode(VECTOR_SECRET) == VECTOR_KEY


@pytest.mark.parametrize(("secret", "timestamp", "body", "expected"), KNOWN_VECTORS)
def test_known_vectors(secret: str, timestamp: int, body: bytes, expected: str) -> None:
    assert signature(secret, body, timestamp) == expected
    assert sign(secret, body, timestamp) == f"t={timestamp},v1={expected}"
    assert verify(secret, body, f"t={timestamp},v1={expected}", now=timestamp) == timestamp


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        '{"message":"Zahlung eingegangen \u2013 \u00e6\u00f8\u00e5"}'.encode(),
        b" \n\t[1, 2]\r\n",
        bytes(range(256)),
    ],
)
def test_signature_matches_independent_computation(body: bytes) -> None:
    secret = base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()
    header = sign(secret, body, 1_800_000_000)
    assert header == f"t=1800000000,v1={independent_v1(secret, 1_800_000_000, body)}"
    assert verify(secret, body, header, now=1_800_000_000) == 1_800_000_000


def test_independent_signature_is_accepted_with_extra_header_parts() -> None:
    header = f"t={VECTOR_T}, v1={independent_v1(VECTOR_SECRET, VECTOR_T, VECTOR_BODY)}, v0=ignored"
    assert verify(VECTOR_SECRET, VECTOR_BODY, header, now=VECTOR_T + 10) == VECTOR_T


@pytest.mark.parametrize(
    ("header", "now", "reason"),
    [
        (None, VECTOR_T, "missing"),
        ("", VECTOR_T, "missing"),
        ("garbage", VECTOR_T, "malformed"),
        (f"t={VECTOR_T}", VECTOR_T, "needs"),
        ("t=soon,v1=00", VECTOR_T, "needs"),
        (f"t={VECTOR_T},v1={'0' * 64}", VECTOR_T, "does not match"),
        (
            f"t={VECTOR_T},v1=F6F7688622C031ECB0F643A9D3A4C0B72DDE8849958F84C331C349F719E074BF",
            VECTOR_T,
            "does not match",
        ),
        (f"t={VECTOR_T},v1={KNOWN_VECTORS[0][3]}", VECTOR_T + 301, "old"),
        (f"t={VECTOR_T},v1={KNOWN_VECTORS[0][3]}", VECTOR_T - 30, "future"),
    ],
)
def test_refused_signatures(header: str | None, now: int, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(VECTOR_SECRET, VECTOR_BODY, header, now=now)


def test_tolerance_edges() -> None:
    header = sign(VECTOR_SECRET, VECTOR_BODY, VECTOR_T)
    assert verify(VECTOR_SECRET, VECTOR_BODY, header, now=VECTOR_T + 300) == VECTOR_T
    assert verify(VECTOR_SECRET, VECTOR_BODY, header, now=VECTOR_T - 15) == VECTOR_T


def test_altered_body_or_other_secret_is_refused() -> None:
    header = sign(VECTOR_SECRET, VECTOR_BODY, VECTOR_T)
    with pytest.raises(SignatureError, match="does not match"):
        verify(VECTOR_SECRET, VECTOR_BODY + b" ", header, now=VECTOR_T)
    other = base64.b64encode(b"another-secret-of-the-same-size!").decode()
    with pytest.raises(SignatureError, match="does not match"):
        verify(other, VECTOR_BODY, header, now=VECTOR_T)


def test_error_messages_never_hold_the_secret() -> None:
    secret = "c2VjcmV0LW5ldmVyLXNob3du"
    for header in (None, "t=1,v1=ab", f"t={VECTOR_T},v1=ab"):
        with pytest.raises(SignatureError) as caught:
            verify(secret, VECTOR_BODY, header, now=VECTOR_T)
        assert secret not in str(caught.value)
        assert base64.b64decode(secret).decode() not in str(caught.value)


def envelope(event: str, data: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "specVersion": "1.0",
            "event": event,
            "timestamp": "2026-01-31T15:23:45Z",
            "data": data,
            "links": {"self": "https://collectionpartner-api.debitura.com/cases/x"},
            "somethingNew": True,
        }
    ).encode()


def test_typed_data_per_event() -> None:
    case_id = str(uuid.uuid4())
    payment = parse_event(
        envelope(
            "payment.created",
            {"caseId": case_id, "paymentId": "p-1", "amount": "125.50", "currency": "EUR", "remainder": 0, "x": 1},
        )
    )
    data = payment.typed_data()
    assert isinstance(data, PaymentData)
    assert (data.case_id, data.payment_id, data.amount, data.currency, data.remainder) == (
        case_id,
        "p-1",
        125.5,
        "EUR",
        0.0,
    )
    updated = parse_event(
        envelope("case.updated", {"caseId": case_id, "oldLifecycle": "Active", "newLifecycle": "Paused"})
    )
    assert updated.typed_data() == CaseUpdatedData(case_id=case_id, old_lifecycle="Active", new_lifecycle="Paused")
    closed = parse_event(envelope("case.closed", {"caseId": case_id, "closeCode": "Paid"})).typed_data()
    assert isinstance(closed, CaseClosedData)
    assert closed.close_code == "Paid"
    assert closed.close_comment is None
    unknown = parse_event(envelope("case.merged", {"caseId": case_id})).typed_data()
    assert type(unknown) is EventData
    assert unknown.case_id == case_id


def test_typed_data_with_an_impossible_field_type_is_an_envelope_error() -> None:
    with pytest.raises(EnvelopeError, match=r"payment\.created data does not fit its shape: amount"):
        parse_event(envelope("payment.created", {"amount": {"value": 1}})).typed_data()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "envelope"),
        (b'{"id": "not-a-uuid", "event": "payment.created", "timestamp": "2026-01-31T15:23:45Z"}', "id"),
        (b'{"id": "550e8400-e29b-41d4-a716-446655440000", "timestamp": "2026-01-31T15:23:45Z"}', "event"),
    ],
)
def test_malformed_envelopes(body: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        parse_event(body)
