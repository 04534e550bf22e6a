"""What a collection partner does to a case it works: start, close, fees, validation, exclusive period."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from debitura_provider.api import validation
from debitura_provider.api.models._base import ApiModel, Money, RequestModel, UtcDateTime
from debitura_provider.api.models.cases import Amount
from debitura_provider.api.models.enums import CloseCode


class StartCaseRequest(RequestModel):
    """Body of ``POST /cases/{id}/start``: accept the case and greet the creditor."""

    welcome_message: str = Field(min_length=1, max_length=5000)
    user_email: str | None = None
    user_id: UUID | None = None
    collection_partner_reference: str | None = Field(default=None, max_length=128)
    assigned_user_email: str | None = None
    assigned_user_id: UUID | None = None
    interest_fees: Amount = Field(default=Decimal(0), ge=0)
    reminder_fees: Amount = Field(default=Decimal(0), ge=0)
    collection_fees: Amount = Field(default=Decimal(0), ge=0)

    @field_validator("user_email", "assigned_user_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else validation.email(value)

    @model_validator(mode="after")
    def _author(self) -> StartCaseRequest:
        if self.user_email is None and self.user_id is None:
            raise ValueError("userEmail (or the deprecated userId) is required: it signs the welcome message")
        return self


class StartCaseResponse(ApiModel):
    case_id: UUID | None = None
    case_reference: str | None = None
    status: str | None = None
    activated_at: UtcDateTime | None = None
    collection_partner_reference: str | None = None


class CloseCaseRequest(RequestModel):
    """Body of ``POST /cases/{id}/close``; Paid and PartiallyPaid need payments to back them."""

    close_code: str = Field(min_length=1)
    comment: str | None = Field(default=None, max_length=2000)

    @field_validator("close_code")
    @classmethod
    def _code(cls, value: str) -> str:
        return CloseCode.parse(value).api_name

    @model_validator(mode="after")
    def _other_needs_comment(self) -> CloseCaseRequest:
        if self.close_code == CloseCode.OTHER.api_name and not (self.comment and self.comment.strip()):
            raise ValueError("close code Other needs a comment saying why")
        return self


class ClosedBy(ApiModel):
    user_id: int | None = None
    user_name: str | None = None


class CloseCaseResponse(ApiModel):
    case_reference: str | None = None
    close_code: str | None = None
    close_code_description: str | None = None
    comment: str | None = None
    closed_at: UtcDateTime | None = None
    closed_by: ClosedBy | None = None
    final_outstanding_amount: Money = Decimal(0)
    total_payments: Money = Decimal(0)
    total_recovered: Money = Decimal(0)


class UpdateFeesRequest(RequestModel):
    """Body of ``PUT /cases/{id}/fees``; a success-fee move over 0.1 pp needs ``confirm_price_change``."""

    gross_amount: Amount | None = Field(default=None, ge=0)
    interest_fees: Amount = Field(default=Decimal(0), ge=0)
    reminder_fees: Amount = Field(default=Decimal(0), ge=0)
    collection_fees: Amount = Field(default=Decimal(0), ge=0)
    confirm_price_change: bool = False
    keep_intentional_rate: bool = False


class UpdateFeesResponse(ApiModel):
    case_id: UUID | None = None
    gross_amount: Money = Decimal(0)
    interest_fees: Money = Decimal(0)
    reminder_fees: Money = Decimal(0)
    collection_fees: Money = Decimal(0)
    total_added_fees: Money = Decimal(0)
    recalculated_success_fee: float | None = None
    remainder: Money = Decimal(0)


class PriceChangeConfirmation(ApiModel):
    """The 409 body of a fee change that needs confirming."""

    case_id: UUID | None = None
    confirmation_required: bool = True
    is_intentional_rate: bool = False
    current_success_fee: float | None = None
    proposed_success_fee: float = 0.0
    warning: str | None = None
    message: str | None = None


class ValidationItem(ApiModel):
    resolution_area: str | None = None
    description: str | None = None


class CaseValidationStatus(ApiModel):
    needs_info: bool = False
    creditor_responded_at: UtcDateTime | None = None
    items: list[ValidationItem] = Field(default_factory=list)


class ExclusivePeriodExtension(ApiModel):
    type: str | None = None
    event_date: UtcDateTime | None = None
    new_end_date: UtcDateTime | None = None


class ExclusivePeriod(ApiModel):
    engagement_start_date: UtcDateTime | None = None
    current_end_date: UtcDateTime | None = None
    days_remaining: int = 0
    status: str | None = None
    extensions: list[ExclusivePeriodExtension] = Field(default_factory=list)
