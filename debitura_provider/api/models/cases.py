"""The case resource (the spec's ``InvoiceDto``), its debtor, and the managed-case create request."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import Field, ValidationInfo, field_validator, model_validator

from debitura_provider.api import validation
from debitura_provider.api.models._base import ApiModel, Money, RequestModel, UtcDateTime, WireDate
from debitura_provider.api.models.enums import DebtorType, Lifecycle

Amount = Money
"""A request amount (the same exact type as every response amount)."""


class Debtor(RequestModel):
    """Who owes the money. Shared by the create request and the case response, as in the spec.

    Jurisdiction comes from ``country``/``country_alpha2`` and, for the US, ``state_alpha2``;
    that is how Debitura picks the collection partner.
    """

    type: DebtorType
    name: str = Field(min_length=1)
    country_alpha2: str | None = None
    country: str | None = Field(default=None, validate_default=True)
    contact_person: str | None = Field(default=None, validate_default=True)
    company_registration_number: str | None = None
    address: str | None = None
    zip_code: str | None = None
    city: str | None = None
    state: str | None = None
    state_alpha2: str | None = Field(default=None, validate_default=True)
    email: str | None = None
    phone: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        if isinstance(value, str):
            folded = value.strip().casefold()
            if folded in ("person", "private"):
                return DebtorType.PERSON
            if folded == "company":
                return DebtorType.COMPANY
            raise ValueError(f"{value!r} is not a debtor type; use 'Company' or 'Person'")
        return value

    @field_validator("country_alpha2")
    @classmethod
    def _country_alpha2(cls, value: str | None) -> str | None:
        return None if value is None else validation.country_alpha2_strict(value)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            validation.country_alpha2(value)
        elif _provided_as_none(info, "country_alpha2"):
            raise ValueError("country or countryAlpha2 is required (the debtor's jurisdiction)")
        return value

    @field_validator("contact_person")
    @classmethod
    def _contact_person(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") is DebtorType.COMPANY and not (value and value.strip()):
            raise ValueError("a Company debtor needs a contact person")
        return value

    @field_validator("state_alpha2")
    @classmethod
    def _state_alpha2(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("country_alpha2") is None and info.data.get("country") is None:
            return value
        if value is not None and value.strip():
            if _debtor_country(info) == "US":
                return validation.us_state(value)
            return value
        if _debtor_country(info) == "US":
            raise ValueError("a US debtor needs its state (e.g. 'CA'), which decides the jurisdiction")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else validation.email(value)

    @property
    def jurisdiction(self) -> str:
        """ISO code of the debtor's jurisdiction: 'DE', or 'US-CA' for a US state."""
        country = self.country_alpha2 or validation.country_alpha2(self.country or "")
        return f"US-{self.state_alpha2}" if country == "US" and self.state_alpha2 else country


def _provided_as_none(info: ValidationInfo, field: str) -> bool:
    # A field that failed its own check is missing from info.data: it is reported once, there.
    return field in info.data and info.data[field] is None


def _debtor_country(info: ValidationInfo) -> str | None:
    alpha2 = info.data.get("country_alpha2")
    if alpha2:
        return str(alpha2)
    name = info.data.get("country")
    try:
        return validation.country_alpha2(name) if name else None
    except ValueError:
        return None


class CreateManagedCaseRequest(RequestModel):
    """Body of ``POST /managed-cases``: one overdue invoice referred on a client's behalf.

    Every limit of the spec, and the rules the API documents in prose, is checked here so
    that nothing invalid is ever sent.
    """

    creditor_company_name: str = Field(min_length=1)
    creditor_country_alpha2: str | None = None
    creditor_country: str | None = Field(default=None, validate_default=True)
    currency_code: str = Field(min_length=1)
    amount_to_recover: Amount
    date: WireDate
    due_date: WireDate | None = None
    comments: str | None = Field(default=None, max_length=4000)
    claim_description: str | None = Field(default=None, max_length=4000)
    creditor_reference: str | None = Field(default=None, max_length=50)
    debtor: Debtor
    is_test: bool = False
    tag: str | None = Field(default=None, max_length=100)
    collection_partner_id: UUID | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_response_only_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for wrong in ("isTestCase", "is_test_case"):
                if wrong in data:
                    raise ValueError(
                        f"'{wrong}' is a response field; send 'isTest' (is_test) to create a test case. "
                        "Debitura ignores unknown fields, so this would create a production case."
                    )
        return data

    @field_validator("creditor_country_alpha2")
    @classmethod
    def _creditor_alpha2(cls, value: str | None) -> str | None:
        return None if value is None else validation.country_alpha2_strict(value)

    @field_validator("creditor_country")
    @classmethod
    def _creditor_country(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            validation.country_alpha2(value)
        elif _provided_as_none(info, "creditor_country_alpha2"):
            raise ValueError("creditorCountry or creditorCountryAlpha2 is required (the client's country)")
        return value

    @field_validator("currency_code")
    @classmethod
    def _currency(cls, value: str) -> str:
        return validation.currency_code(value)

    @field_validator("amount_to_recover")
    @classmethod
    def _amount(cls, value: Decimal) -> Decimal:
        return validation.positive_amount(value)

    @field_validator("date")
    @classmethod
    def _date(cls, value: dt.date) -> dt.date:
        if value > dt.datetime.now(dt.timezone.utc).date():
            raise ValueError("the invoice date cannot be in the future")
        return value

    @field_validator("due_date")
    @classmethod
    def _due_date(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        issued = info.data.get("date")
        if value is not None and issued is not None and value < issued:
            raise ValueError("the due date cannot be earlier than the invoice date")
        return value


class DivisionRef(ApiModel):
    id: UUID | None = None
    name: str | None = None


class Creditor(ApiModel):
    """The agency's client, as Debitura recorded it for this case."""

    id: UUID | None = None
    company_name: str | None = None
    company_registration_number: str | None = None
    office_email: str | None = None
    office_phone: str | None = None
    address: str | None = None
    city: str | None = None
    zip_code: str | None = None
    state: str | None = None
    country: str | None = None
    division: DivisionRef | None = None


class CollectionPartnerInfo(ApiModel):
    """The partner Debitura assigned to work the case."""

    name: str | None = None
    office_email: str | None = None
    office_phone: str | None = None
    public_site: str | None = None
    survey_cadence_mode: int | None = None


class BankAccount(ApiModel):
    id: int | None = None
    label: str | None = None
    scheme: str | None = None
    currency_code: str | None = None
    bank_country_code: str | None = None
    account_holder_name: str | None = None
    iban: str | None = None
    bic: str | None = None
    account_number: str | None = None
    local_identifier: str | None = None
    local_identifier_type: str | None = None
    bank_name: str | None = None
    bank_address: str | None = None
    bank_city: str | None = None
    bank_zip_code: str | None = None
    bank_state: str | None = None


class SigningHandoff(ApiModel):
    combined_signing_url: str | None = None


class ValidationFlag(ApiModel):
    needs_info: bool = False


class AssignedUser(ApiModel):
    email: str | None = None
    name: str | None = None


class AllocationOutstanding(ApiModel):
    principal: Money = Decimal(0)
    interest: Money = Decimal(0)
    reminder_fees: Money = Decimal(0)
    collection_fees: Money = Decimal(0)


class CaseDebtor(ApiModel):
    """The debtor as a response carries it: read leniently, never re-validated."""

    type: str | None = None
    name: str | None = None
    contact_person: str | None = None
    company_registration_number: str | None = None
    address: str | None = None
    zip_code: str | None = None
    city: str | None = None
    state: str | None = None
    state_alpha2: str | None = None
    country_alpha2: str | None = None
    country: str | None = None
    email: str | None = None
    phone: str | None = None


class Case(ApiModel):
    """A case as Debitura returns it (``InvoiceDto``); ``lifecycle`` and ``close_code`` hold labels."""

    id: UUID
    date_created: UtcDateTime | None = None
    date_updated: UtcDateTime | None = None
    reference: str | None = None
    creditor_reference: str | None = None
    creditor_comments: str | None = None
    claim_description: str | None = None
    gross_amount: Money = Decimal(0)
    remainder: Money = Decimal(0)
    interest_fees: Money = Decimal(0)
    reminder_fees: Money = Decimal(0)
    collection_fees: Money = Decimal(0)
    total_added_fees: Money = Decimal(0)
    currency: str | None = None
    is_test_case: bool = False
    lifecycle: str | None = None
    due_date: UtcDateTime | None = None
    date: UtcDateTime | None = None
    date_finished: UtcDateTime | None = None
    date_collection_started: UtcDateTime | None = None
    close_code: str | None = None
    current_engagement_phase: str | None = None
    claim_type: str | None = None
    creditor_division_id: UUID | None = None
    debtor: CaseDebtor | None = None
    collection_partner: CollectionPartnerInfo | None = None
    creditor: Creditor | None = None
    bank_account: BankAccount | None = None
    blended_age_uplift_points: float | None = None
    pre_legal_success_fee: float | None = None
    signing_handoff: SigningHandoff | None = None
    exclusive_period_end_date: UtcDateTime | None = None
    dispute_status: str | None = None
    validation: ValidationFlag | None = None
    assigned_user: AssignedUser | None = None
    allocation_outstanding: AllocationOutstanding | None = None

    @property
    def paid_off(self) -> Decimal:
        """How much payments took off the case: principal + fees - remainder (Debitura's definition)."""
        return self.gross_amount + self.total_added_fees - self.remainder

    @property
    def lifecycle_state(self) -> Lifecycle | None:
        """The lifecycle as an enum, or None when Debitura returned a label this client does not know."""
        try:
            return Lifecycle.parse(self.lifecycle) if self.lifecycle else None
        except ValueError:
            return None


class PageInfo(ApiModel):
    """The ``page`` block of a list response."""

    total_results: int = 0
    page_size: int = 0
    current_page: int = 1
    response_count: int = 0
    total_pages: int = 0


class CasePage(ApiModel):
    """One page of ``GET /managed-cases`` or ``GET /cases``."""

    page: PageInfo
    cases: list[Case] = Field(default_factory=list)


class TimelineActor(ApiModel):
    type: str | None = None
    name: str | None = None


class TimelineItem(ApiModel):
    """One event in a case's history: assignment, lifecycle change, payment, note, ..."""

    date: UtcDateTime | None = None
    type: str | None = None
    title: str | None = None
    description: str | None = None
    actor: TimelineActor | None = None


class Timeline(ApiModel):
    items: list[TimelineItem] = Field(default_factory=list)
    current_engagement_phase: str | None = None
