"""Vocabularies whose request names differ from the labels Debitura returns (API-NOTES §3.2, §3.3)."""

from __future__ import annotations

from enum import Enum


class Lifecycle(str, Enum):
    """A case's lifecycle. The member name is what filters take; the value is what responses carry."""

    PENDING_CONTRACT_SIGNING = "Pending contract signing"
    PENDING_VERIFICATION_INTERNAL = "Pending Verification Internal"
    PENDING_VERIFICATION = "Pending Verification"
    NEEDS_ADDITIONAL_DETAILS = "More Info Required"
    LEADS = "Collecting Quotes"
    LEADS_QUOTE_GIVEN = "Pending Quote Selection"
    ACTIVE = "Active"
    PAUSED = "Paused"
    CLOSED = "Closed"
    MERGED = "Merged"

    @property
    def api_name(self) -> str:
        """The PascalCase name the `Statuses` filter and `/test/cases/{id}/advance` take."""
        return _LIFECYCLE_NAMES[self]

    @classmethod
    def parse(cls, value: str) -> Lifecycle:
        """Accept a name or a label, in any case, as the API does for `Statuses`."""
        key = _fold(value)
        try:
            return _LIFECYCLE_LOOKUP[key]
        except KeyError:
            allowed = ", ".join(m.api_name for m in cls)
            raise ValueError(f"unknown lifecycle {value!r}; expected one of {allowed}") from None


_LIFECYCLE_NAMES = {
    Lifecycle.PENDING_CONTRACT_SIGNING: "PendingContractSigning",
    Lifecycle.PENDING_VERIFICATION_INTERNAL: "PendingVerificationInternal",
    Lifecycle.PENDING_VERIFICATION: "PendingVerification",
    Lifecycle.NEEDS_ADDITIONAL_DETAILS: "NeedsAdditionalDetails",
    Lifecycle.LEADS: "Leads",
    Lifecycle.LEADS_QUOTE_GIVEN: "LeadsQuoteGiven",
    Lifecycle.ACTIVE: "Active",
    Lifecycle.PAUSED: "Paused",
    Lifecycle.CLOSED: "Closed",
    Lifecycle.MERGED: "Merged",
}


def _fold(value: str) -> str:
    return "".join(ch for ch in value.casefold() if ch.isalnum())


_LIFECYCLE_LOOKUP = {
    **{_fold(m.value): m for m in Lifecycle},
    **{_fold(name): m for m, name in _LIFECYCLE_NAMES.items()},
}


class CloseCode(str, Enum):
    """Close codes a collection partner may set; the value is the label responses carry."""

    PAID = "Paid"
    PARTIALLY_PAID = "Partially paid"
    DEBTOR_INSOLVENT_BANKRUPT = "Debtor Insolvent/Bankrupt"
    DEBTOR_UNTRACEABLE = "Debtor Untraceable"
    DISPUTED_LEGAL_ACTION_DECLINED_BY_CLIENT = "Disputed \u2013 Legal Action Declined by Client"
    WITHDRAWN_BY_CLIENT = "Withdrawn by Client"
    PRE_LEGAL_EXHAUSTED_NO_PAYMENT = "Pre-Legal Exhausted \u2013 No Payment"
    STATUTE_OF_LIMITATIONS_EXPIRED = "Statute of Limitations Expired"
    SETTLEMENT_REJECTED_BY_CLIENT = "Settlement Rejected by Client"
    UNRESPONSIVE_CLIENT = "Unresponsive Client"
    UNECONOMICAL_TO_PURSUE = "Uneconomical to Pursue"
    OTHER = "Other"

    @property
    def api_name(self) -> str:
        """The PascalCase name `POST /cases/{id}/close` takes."""
        return "".join(part.capitalize() for part in self.name.split("_"))

    @classmethod
    def parse(cls, value: str) -> CloseCode:
        """Accept a name or a label, in any case."""
        key = _fold(value)
        for member in cls:
            if key in (_fold(member.value), _fold(member.api_name)):
                return member
        allowed = ", ".join(m.api_name for m in cls)
        raise ValueError(f"unknown close code {value!r}; expected one of {allowed}")


class DebtorType(str, Enum):
    """Debtor kinds. Debitura's other APIs say "Private" for a person; it is read as Person."""

    COMPANY = "Company"
    PERSON = "Person"


class PaymentRecipient(str, Enum):
    """Who received a payment recorded by the collection partner."""

    CREDITOR = "Creditor"
    COLLECTION_PARTNER = "CollectionPartner"
    PLATFORM = "Platform"


class CommissionPaymentStatus(str, Enum):
    """Whether the collection partner's commission on a creditor-received payment was paid."""

    PAID = "Paid"
    UNPAID = "Unpaid"


class WebhookEventType(str, Enum):
    """Events a collection-partner webhook subscription can receive (API-NOTES §6.2)."""

    CASE_ASSIGNED = "case.assigned"
    CASE_UPDATED = "case.updated"
    CASE_CLOSED = "case.closed"
    PAYMENT_CREATED = "payment.created"
    PAYMENT_DELETED = "payment.deleted"
    CHAT_CREATED = "chat.created"


class AdvanceTarget(str, Enum):
    """States `POST /test/cases/{id}/advance` can drive a test case to."""

    ACTIVE = "Active"
    CLOSED_PAID = "Closed:Paid"
    CLOSED_NO_PAYMENT = "Closed:NoPayment"
