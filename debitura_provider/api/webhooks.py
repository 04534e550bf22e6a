"""Webhook signatures and envelopes, in one place for the sandbox (which signs) and receivers (which check).

Debitura signs each delivery with ``X-Debitura-Signature: t={unix},v1={hex}`` where
``v1 = lowercase_hex(HMAC_SHA256(base64_decode(secret), f"{t}.{raw_body}"))`` (API-NOTES §6.4).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any
from uuid import UUID

from pydantic import Field, ValidationError

from debitura_provider.api.errors import EnvelopeError, SignatureError
from debitura_provider.api.models._base import ApiModel, Money, UtcDateTime

SIGNATURE_HEADER = "X-Debitura-Signature"
TIMESTAMP_HEADER = "X-Debitura-Timestamp"
EVENT_HEADER = "X-Debitura-Event"
REPLAY_HEADER = "X-Debitura-Replay"

TOLERANCE_SECONDS = 300
"""How old a signature may be; Debitura's own sample rejects anything older."""
FUTURE_SKEW_SECONDS = 15
"""How far ahead of our clock a signature may be (clock skew); 30 s ahead is refused."""


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(
            "the webhook secret is not valid base64; copy it exactly as Debitura returned it"
        ) from None


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The ``v1`` value: lowercase hex HMAC-SHA256 over ``"{t}.{raw body}"``."""
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Debitura-Signature`` header value for a body, as Debitura sends it."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, body, t)}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """Check a delivery's signature; returns its timestamp or raises :class:`SignatureError`.

    The comparison is constant-time, and only the raw body as received is signed: parse after verifying.
    """
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    parts: dict[str, str] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {SIGNATURE_HEADER} header")
        parts.setdefault(name, value)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise SignatureError(f"{SIGNATURE_HEADER} needs t=<unix seconds>,v1=<hex>") from None
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance:
        raise SignatureError(f"signature is {int(age)} s old (more than {tolerance} s): stale or replayed")
    if age < -FUTURE_SKEW_SECONDS:
        raise SignatureError(f"signature is {int(-age)} s in the future; check the clocks")
    if not hmac.compare_digest(signature(secret, body, timestamp), given):
        raise SignatureError("signature does not match: wrong secret, or the body was altered")
    return timestamp


class EventData(ApiModel):
    """What every event's ``data`` carries. Per-event shapes are unpublished (API-NOTES §6.3):
    these classes follow the sandbox's assumptions, and every field is optional so that a
    differently shaped real payload still parses; the raw dict stays on :attr:`WebhookEvent.data`.
    """

    case_id: str | None = None
    reference: str | None = None
    lifecycle: str | None = None
    classification: str | None = None


class CaseAssignedData(EventData):
    """``case.assigned``: the case was validated and assigned to the agency."""


class CaseUpdatedData(EventData):
    """``case.updated``: a lifecycle change (not an engagement phase change)."""

    old_lifecycle: str | None = None
    new_lifecycle: str | None = None


class CaseClosedData(EventData):
    """``case.closed``: the close code and its comment."""

    close_code: str | None = None
    close_comment: str | None = None


class PaymentData(EventData):
    """``payment.created`` / ``payment.deleted``: the payment and what remains owed."""

    payment_id: str | None = None
    amount: Money | None = None
    currency: str | None = None
    date: str | None = None
    remainder: Money | None = None


class ChatCreatedData(EventData):
    """``chat.created``: a chat message on the case."""

    chat_id: str | None = None
    message: str | None = None
    role_label: str | None = None


DATA_TYPES: dict[str, type[EventData]] = {
    "case.assigned": CaseAssignedData,
    "case.updated": CaseUpdatedData,
    "case.closed": CaseClosedData,
    "payment.created": PaymentData,
    "payment.deleted": PaymentData,
    "chat.created": ChatCreatedData,
}


class WebhookEvent(ApiModel):
    """A delivered event (``id``, ``specVersion``, ``event``, ``timestamp``, ``data``, ``links``).

    ``id`` is unique per event: receivers deduplicate on it (delivery is at least once).
    """

    id: UUID
    spec_version: str = "1.0"
    event: str
    timestamp: UtcDateTime
    data: dict[str, Any] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)

    @property
    def case_id(self) -> str | None:
        value = self.data.get("caseId")
        return str(value) if value else None

    def typed_data(self) -> EventData:
        """``data`` read as this event type's model (:class:`EventData` for an unknown type).

        Raises :class:`EnvelopeError` when a known field has an impossible type.
        """
        model = DATA_TYPES.get(self.event, EventData)
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise EnvelopeError(f"{self.event} data does not fit its shape: {_locations(exc)}") from None


def parse_event(body: bytes) -> WebhookEvent:
    """Parse a raw delivery body into a :class:`WebhookEvent`, or raise :class:`EnvelopeError`."""
    try:
        return WebhookEvent.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EnvelopeError("body is not JSON") from None
    except ValidationError as exc:
        raise EnvelopeError(f"not a Debitura event envelope (bad or missing: {_locations(exc)})") from None


def _locations(exc: ValidationError) -> str:
    return ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
