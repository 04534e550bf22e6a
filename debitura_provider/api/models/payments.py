"""Payments: read by both roles, recorded by the collection partner, or by the managing partner on test cases."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from debitura_provider.api import validation
from debitura_provider.api.models._base import ApiModel, Money, RequestModel, UtcDateTime, WireDate
from debitura_provider.api.models.cases import Amount
from debitura_provider.api.models.enums import CommissionPaymentStatus, PaymentRecipient


class PaymentInvoice(ApiModel):
    status: str | None = None
    reference: str | None = None
    invoice_id: UUID | None = None


class Payment(ApiModel):
    """A payment on a case (``PaymentDto``); lists come newest first."""

    id: UUID
    date_created: UtcDateTime | None = None
    date_updated: UtcDateTime | None = None
    date: UtcDateTime | None = None
    gross_amount: Money = Decimal(0)
    recipient: str | None = None
    method: str | None = None
    currency: str | None = None
    invoice: PaymentInvoice | None = None


class TestPaymentRequest(RequestModel):
    """Body of ``POST /managed-cases/{id}/payments``, allowed on test cases only."""

    __test__ = False  # not a pytest test class

    date: WireDate
    payment_amount: Amount = Field(ge=Decimal("0.01"))
    close_case: bool = False

    @field_validator("payment_amount")
    @classmethod
    def _amount(cls, value: Decimal) -> Decimal:
        return validation.positive_amount(value)


class TestPaymentResponse(ApiModel):
    """What recording a test payment returns."""

    __test__ = False

    payment_id: UUID | None = None
    case_reference: str | None = None
    date: UtcDateTime | None = None
    payment_amount: Money = Decimal(0)
    case_closed: bool = False
    remaining_amount: Money = Decimal(0)


_SLACK = Decimal("0.01")
"""The API's own rule: an explicit split must sum to the payment amount within 0.01."""


class _PayoutSplit(RequestModel):
    date: WireDate
    payment_amount: Amount = Field(ge=Decimal("0.01"))
    payout_creditor: Amount | None = Field(default=None, ge=0)
    payout_collection_partner: Amount | None = Field(default=None, ge=0)
    payment_recipient: PaymentRecipient
    commission_payment_status: CommissionPaymentStatus | None = None

    @model_validator(mode="after")
    def _split(self) -> _PayoutSplit:
        creditor, partner = self.payout_creditor, self.payout_collection_partner
        if (creditor is None) != (partner is None):
            raise ValueError("payoutCreditor and payoutCollectionPartner go together: give both or neither")
        if creditor is not None and partner is not None and abs(creditor + partner - self.payment_amount) > _SLACK:
            raise ValueError("payoutCreditor + payoutCollectionPartner must equal paymentAmount (within 0.01)")
        if self.payment_recipient is PaymentRecipient.CREDITOR and self.commission_payment_status is None:
            raise ValueError("commissionPaymentStatus is required when paymentRecipient is Creditor")
        return self


class CreatePaymentRequest(_PayoutSplit):
    """Body of ``POST /cases/{id}/payments`` (collection partner)."""

    close_case: bool = False
    create_unpaid_commission_follow_up: bool = True


class UpdatePaymentRequest(_PayoutSplit):
    """Body of ``PUT .../payments/{paymentId}``; ``reopen_case_if_needed`` lets a Paid case reopen."""

    reopen_case_if_needed: bool = False

    @field_validator("payment_recipient")
    @classmethod
    def _recipient(cls, value: PaymentRecipient) -> PaymentRecipient:
        if value is PaymentRecipient.PLATFORM:
            raise ValueError("a payment cannot be edited to Platform; delete it and record a new one")
        return value


class CreatePaymentResponse(ApiModel):
    """What ``POST /cases/{id}/payments`` returns."""

    payment_id: UUID | None = None
    case_reference: str | None = None
    date: UtcDateTime | None = None
    payment_amount: Money = Decimal(0)
    payout_creditor: Money = Decimal(0)
    payout_collection_partner: Money = Decimal(0)
    payment_recipient: str | None = None
    commission_payment_status: str | None = None
    close_case: bool = False
    case_closed: bool = False
    close_code: str | None = None
    remaining_amount: Money = Decimal(0)
    warnings: list[str] = Field(default_factory=list)
