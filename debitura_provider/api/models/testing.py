"""The ``/test/*`` endpoints that drive ``isTest`` cases through their lifecycle."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from debitura_provider.api.models._base import ApiModel, RequestModel
from debitura_provider.api.models.cases import Amount
from debitura_provider.api.models.enums import AdvanceTarget, WebhookEventType


class AdvanceRequest(RequestModel):
    """Body of ``POST /test/cases/{id}/advance``."""

    to: AdvanceTarget
    amount: Amount | None = Field(default=None, gt=0)


class AdvanceResult(ApiModel):
    """``advanced`` is False when the case already was in that state (no events fire)."""

    advanced: bool = False
    state: str | None = None


class FireWebhookRequest(RequestModel):
    """Body of ``POST /test/webhooks/fire``."""

    event: WebhookEventType
    case_id: UUID
    subscription_id: UUID | None = None


class FireWebhookResult(ApiModel):
    event_type: str | None = None
    case_id: UUID | None = None
    enqueued_count: int = 0
