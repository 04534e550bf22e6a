"""Webhook subscriptions and the delivery log, as the REST API exposes them."""

from __future__ import annotations

from urllib.parse import urlsplit
from uuid import UUID

from pydantic import Field, SecretStr, field_validator

from debitura_provider.api.models._base import ApiModel, RequestModel, UtcDateTime
from debitura_provider.api.models.enums import WebhookEventType
from debitura_provider.api.validation import is_loopback


class WebhookSubscription(ApiModel):
    """A subscription; ``secret`` is only present right after create or re-key, and never printed."""

    id: UUID
    url: str | None = None
    events: list[str] = Field(default_factory=list)
    is_active: bool = True
    created_utc: UtcDateTime | None = None
    updated_utc: UtcDateTime | None = None
    disabled_reason: str | None = None
    secret: SecretStr | None = None
    is_test_mode: bool = False


def _https_url(value: str | None) -> str | None:
    # Debitura delivers to public HTTPS endpoints only; plain http is allowed to this machine, for the sandbox.
    if value is not None and not value.lower().startswith("https://"):
        parts = urlsplit(value)
        if not (parts.scheme.lower() == "http" and is_loopback(parts.hostname or "")):
            raise ValueError("a webhook URL must be https:// (Debitura delivers to public HTTPS endpoints only)")
    return value


class CreateWebhookRequest(RequestModel):
    """Body of ``POST /webhooks``."""

    url: str = Field(min_length=1, max_length=1024)
    events: list[WebhookEventType] = Field(min_length=1)
    is_test_mode: bool = False

    _url = field_validator("url")(_https_url)


class UpdateWebhookRequest(RequestModel):
    """Body of ``PUT /webhooks/{id}``; ``regenerate_secret`` re-keys, ``is_active`` re-enables."""

    url: str | None = Field(default=None, max_length=1024)
    events: list[WebhookEventType] | None = Field(default=None, min_length=1)
    is_active: bool | None = None
    regenerate_secret: bool = False
    is_test_mode: bool | None = None

    _url = field_validator("url")(_https_url)


class WebhookEventRecord(ApiModel):
    """One row of ``GET /webhooks/events``; ``payload`` is the delivered body as a JSON string."""

    id: UUID
    subscription_id: UUID | None = None
    case_id: UUID | None = None
    event_type: str | None = None
    payload: str | None = None
    created_at: UtcDateTime | None = None
    delivered_at: UtcDateTime | None = None
    attempt_count: int = 0
    last_response_code: int | None = None
    last_error: str | None = None


class ReplayedEvent(ApiModel):
    """What a replay (of one event, or of a test case's last event) queued."""

    event_id: UUID | None = None
    subscription_id: UUID | None = None
    event_type: str | None = None
