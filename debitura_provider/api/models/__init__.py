"""Pydantic models of the Collection Partner API: camelCase on the wire, snake_case in Python.

Request models refuse unknown fields and check every documented rule before anything is sent;
response models tolerate fields they do not know.
"""

from debitura_provider.api.models._base import ApiModel, RequestModel, to_wire
from debitura_provider.api.models.case_actions import (
    CaseValidationStatus,
    CloseCaseRequest,
    CloseCaseResponse,
    ExclusivePeriod,
    PriceChangeConfirmation,
    StartCaseRequest,
    StartCaseResponse,
    UpdateFeesRequest,
    UpdateFeesResponse,
)
from debitura_provider.api.models.cases import (
    Case,
    CaseDebtor,
    CasePage,
    CreateManagedCaseRequest,
    Debtor,
    PageInfo,
    Timeline,
    TimelineItem,
)
from debitura_provider.api.models.communication import (
    CaseFile,
    ChatMessage,
    CreateNoteRequest,
    Note,
    SendChatRequest,
)
from debitura_provider.api.models.enums import (
    AdvanceTarget,
    CloseCode,
    CommissionPaymentStatus,
    DebtorType,
    Lifecycle,
    PaymentRecipient,
    WebhookEventType,
)
from debitura_provider.api.models.errors import ApiErrorBody, BusinessError
from debitura_provider.api.models.jobs import (
    CreateIngestionJobRequest,
    IngestionJobCreated,
    IngestionJobStatus,
    IngestionRow,
)
from debitura_provider.api.models.partner import Me, User, UserPage
from debitura_provider.api.models.payments import (
    CreatePaymentRequest,
    CreatePaymentResponse,
    Payment,
    TestPaymentRequest,
    TestPaymentResponse,
    UpdatePaymentRequest,
)
from debitura_provider.api.models.testing import (
    AdvanceRequest,
    AdvanceResult,
    FireWebhookRequest,
    FireWebhookResult,
)
from debitura_provider.api.models.webhooks import (
    CreateWebhookRequest,
    ReplayedEvent,
    UpdateWebhookRequest,
    WebhookEventRecord,
    WebhookSubscription,
)

__all__ = [
    "AdvanceRequest",
    "AdvanceResult",
    "AdvanceTarget",
    "ApiErrorBody",
    "ApiModel",
    "BusinessError",
    "Case",
    "CaseDebtor",
    "CaseFile",
    "CasePage",
    "CaseValidationStatus",
    "ChatMessage",
    "CloseCaseRequest",
    "CloseCaseResponse",
    "CloseCode",
    "CommissionPaymentStatus",
    "CreateIngestionJobRequest",
    "CreateManagedCaseRequest",
    "CreateNoteRequest",
    "CreatePaymentRequest",
    "CreatePaymentResponse",
    "CreateWebhookRequest",
    "Debtor",
    "DebtorType",
    "ExclusivePeriod",
    "FireWebhookRequest",
    "FireWebhookResult",
    "IngestionJobCreated",
    "IngestionJobStatus",
    "IngestionRow",
    "Lifecycle",
    "Me",
    "Note",
    "PageInfo",
    "Payment",
    "PaymentRecipient",
    "PriceChangeConfirmation",
    "ReplayedEvent",
    "RequestModel",
    "SendChatRequest",
    "StartCaseRequest",
    "StartCaseResponse",
    "TestPaymentRequest",
    "TestPaymentResponse",
    "Timeline",
    "TimelineItem",
    "UpdateFeesRequest",
    "UpdateFeesResponse",
    "UpdatePaymentRequest",
    "UpdateWebhookRequest",
    "User",
    "UserPage",
    "WebhookEventRecord",
    "WebhookEventType",
    "WebhookSubscription",
    "to_wire",
]
