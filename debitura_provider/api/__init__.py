"""Typed client for Debitura's Collection Partner API. No Airflow import anywhere below here."""

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
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    TransportError,
)
from debitura_provider.api.models import to_wire
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
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimits",
    "RequestValidationError",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "to_wire",
]
