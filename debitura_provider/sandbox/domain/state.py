"""The sandbox's domain records: what Debitura would keep in its database.

Plain pydantic models so that the SQLite store can persist them as JSON without a mapping layer.
They are internal (snake_case, ``Decimal`` money); :mod:`.views` turns them into the API's wire models.
"""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from debitura_provider.api.models import CloseCode, Lifecycle


class Record(BaseModel):
    model_config = ConfigDict(validate_assignment=False, arbitrary_types_allowed=False)


class Keyed(Record):
    """A record stored under its own id."""

    id: UUID


class User(Keyed):
    """A partner's portal user. The API names users by uuid in ``/users`` but by int32 in chat and notes."""

    id: UUID
    number: int
    name: str
    email: str


class Partner(Keyed):
    """A partner that owns an API key: the managing partner, or a collection partner."""

    id: UUID
    slug: str
    name: str
    api_key: str
    country: str
    coverage: tuple[str, ...] = ()
    simulated: bool = False
    routable: bool = True
    office_email: str
    office_phone: str
    public_site: str
    users: list[User] = Field(default_factory=list)

    def covers(self, jurisdiction: str) -> bool:
        """'US-CA' is covered by 'US-CA' or by 'US' (every state)."""
        country = jurisdiction.split("-", 1)[0]
        return jurisdiction in self.coverage or country in self.coverage

    def user_by(self, *, email: str | None = None, user_id: UUID | None = None) -> User | None:
        for user in self.users:
            if (email is not None and user.email.casefold() == email.casefold()) or user.id == user_id:
                return user
        return None


class Actor(Record):
    type: str  # "System", "Partner user", "Creditor user"
    name: str | None = None


class TimelineEntry(Record):
    seq: int
    date: datetime
    type: str
    title: str
    description: str
    actor: Actor


class PaymentRecord(Keyed):
    id: UUID
    date_created: datetime
    date_updated: datetime | None = None
    date: dt.date
    amount: Decimal
    recipient: str
    method: str = "Bank transfer"
    payout_creditor: Decimal
    payout_collection_partner: Decimal
    commission_payment_status: str
    recorded: float  # sandbox time, for payout invoicing
    deleted_at: datetime | None = None


class ChatRecord(Keyed):
    id: UUID
    date_created: datetime
    role: int  # 0 Partner, 1 Creditor, 2 Managed by partner
    role_label: str
    message: str
    user: User


class NoteRecord(Keyed):
    id: UUID
    created_at: datetime
    event_date: datetime | None = None
    description: str
    user: User


class FileRecord(Keyed):
    id: UUID
    date_created: datetime
    file_name: str
    size: int
    description: str | None = None
    document_type: str | None = None


class ValidationItem(Record):
    resolution_area: str
    description: str


class CaseRecord(Keyed):
    """One case (the spec's InvoiceDto) with everything hanging off it."""

    id: UUID
    reference: str
    managing_partner_id: UUID
    collection_partner_id: UUID
    is_test: bool
    tag: str | None = None
    debtor_id: UUID
    debtor: dict[str, Any]
    jurisdiction: str
    creditor_id: UUID
    creditor_name: str
    creditor_country: str | None = None
    creditor_reference: str | None = None
    comments: str | None = None
    claim_description: str | None = None
    currency: str
    gross_amount: Decimal
    interest_fees: Decimal = Decimal(0)
    reminder_fees: Decimal = Decimal(0)
    collection_fees: Decimal = Decimal(0)
    success_fee: Decimal
    date: dt.date
    due_date: dt.date
    date_created: datetime
    date_updated: datetime | None = None
    date_finished: datetime | None = None
    date_collection_started: datetime | None = None
    lifecycle: Lifecycle = Lifecycle.PENDING_VERIFICATION_INTERNAL
    close_code: CloseCode | None = None
    system_close_code: str | None = None  # a close code only Debitura sets (API-NOTES §3.3, "System")
    close_comment: str | None = None
    closed_by: User | None = None
    engagement_phase: str | None = None
    collection_partner_reference: str | None = None
    assigned_user: User | None = None
    needs_info: bool = False
    validation_items: list[ValidationItem] = Field(default_factory=list)
    creditor_responded_at: datetime | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    payments: list[PaymentRecord] = Field(default_factory=list)
    chats: list[ChatRecord] = Field(default_factory=list)
    notes: list[NoteRecord] = Field(default_factory=list)
    files: list[FileRecord] = Field(default_factory=list)
    info_return: Lifecycle | None = None  # where a More Info Required case goes back to
    declined_by: list[UUID] = Field(default_factory=list)  # partners that declined it, in order
    sim_step: int = 0
    sim_due: float | None = None
    children: int = 0  # ids issued below this case

    @property
    def live_payments(self) -> list[PaymentRecord]:
        return [p for p in self.payments if p.deleted_at is None]

    @property
    def close_label(self) -> str | None:
        """The close code as case DTOs carry it (its label), whether a partner or Debitura closed the case."""
        return self.close_code.value if self.close_code else self.system_close_code

    @property
    def is_open(self) -> bool:
        return self.lifecycle not in (Lifecycle.CLOSED, Lifecycle.MERGED)


class Subscription(Keyed):
    id: UUID
    partner_id: UUID
    url: str
    events: list[str]
    is_test_mode: bool
    is_active: bool = True
    secret: str
    created_utc: datetime
    updated_utc: datetime
    disabled_reason: str | None = None


class EventRecord(Keyed):
    """One event for one subscription: the delivery log row of ``GET /webhooks/events``."""

    id: UUID
    subscription_id: UUID
    partner_id: UUID
    case_id: UUID | None
    event_type: str
    payload: str
    created_at: datetime
    delivered_at: datetime | None = None
    attempt_count: int = 0
    round_attempts: int = 0
    next_attempt_at: float | None = None
    last_response_code: int | None = None
    last_error: str | None = None
    replay: bool = False


class IngestionJob(Keyed):
    id: UUID
    partner_id: UUID
    rows: list[dict[str, Any]]
    status: int = 0  # 0 queued, 1 running, 2 succeeded, 3 partly failed, 4 failed
    rows_succeeded: int = 0
    rows_failed: int = 0
    due: float | None = None


class StoredResponse(Record):
    """A response kept for an Idempotency-Key, replayed verbatim on a retry."""

    fingerprint: str
    status: int
    headers: list[tuple[str, str]]
    body: str
    created: float
