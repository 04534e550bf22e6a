"""Error bodies. Debitura answers with several shapes; all are read into one exception type."""

from __future__ import annotations

from pydantic import Field

from debitura_provider.api.models._base import ApiModel


class BusinessError(ApiModel):
    """A rule the request broke, e.g. ``NoPartnerAvailable``; ``solution_url`` says how to fix it."""

    type: str | None = None
    message: str | None = None
    solution_url: str | None = None


class ApiErrorBody(ApiModel):
    """``ApiErrorResponseDto``: ``error``/``message`` are legacy, ``business_errors`` canonical."""

    error: str | None = None
    message: str | None = None
    business_errors: list[BusinessError] = Field(default_factory=list)
