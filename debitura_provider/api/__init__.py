"""Typed client for Debitura's Collection Partner API. No Airflow import anywhere below here.

Everything a caller needs is importable from here: the clients, :class:`Call` (what ``send()``
takes), every exception (:mod:`debitura_provider.api.errors` draws their hierarchy), the serializer
:func:`to_wire` and the money rule (:func:`to_minor`, :func:`same_amount`).
"""

from debitura_provider.api._call import Call
from debitura_provider.api.client import (
    DEFAULT_BASE_URL,
    AsyncDebituraClient,
    DebituraClient,
    RetryPolicy,
)
from debitura_provider.api.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    BusinessRuleError,
    CasesNotFound,
    ConfigurationError,
    ConflictError,
    DebituraError,
    EnvelopeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReceiverNotConfigured,
    RequestValidationError,
    SecretStoreError,
    ServerError,
    SignatureError,
    TransportError,
)
from debitura_provider.api.models import to_wire
from debitura_provider.api.money import minor_digits, same_amount, to_minor
from debitura_provider.api.ratelimit import DEBITURA_LIMITS, UNLIMITED, RateLimits

__all__ = [
    "DEBITURA_LIMITS",
    "DEFAULT_BASE_URL",
    "UNLIMITED",
    "ApiError",
    "AsyncDebituraClient",
    "AuthenticationError",
    "BadRequestError",
    "BusinessRuleError",
    "Call",
    "CasesNotFound",
    "ConfigurationError",
    "ConflictError",
    "DebituraClient",
    "DebituraError",
    "EnvelopeError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimits",
    "ReceiverNotConfigured",
    "RequestValidationError",
    "RetryPolicy",
    "SecretStoreError",
    "ServerError",
    "SignatureError",
    "TransportError",
    "minor_digits",
    "same_amount",
    "to_minor",
    "to_wire",
]
