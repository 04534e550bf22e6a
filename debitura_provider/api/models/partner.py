"""The calling partner (``GET /me``) and its users."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from debitura_provider.api.models._base import ApiModel
from debitura_provider.api.models.cases import PageInfo


class Me(ApiModel):
    """The partner that owns the API key; ``GET /me`` is the cheapest authenticated call."""

    id: UUID
    company_name: str | None = None
    logo_url: str | None = None
    company_registration_number: str | None = None
    vat_number: str | None = None
    address: str | None = None
    zip_code: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    office_email: str | None = None
    office_phone: str | None = None
    invoice_email: str | None = None
    billing_contact: str | None = None
    invoice_currency: int | None = None
    commission_type: int | None = None
    pre_legal_revenue_share: float | None = None
    legal_revenue_share: float | None = None
    verified_profile: bool = False
    full_address: str | None = None
    survey_cadence_mode: int | None = None


class User(ApiModel):
    id: UUID
    name: str | None = None
    email: str | None = None


class UserPage(ApiModel):
    page: PageInfo
    users: list[User] = Field(default_factory=list)
