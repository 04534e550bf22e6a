"""Every exception of the package, and whether trying again later may succeed.

Messages say what happened and what to do. None of them ever carries the API key or the webhook
secret: the key lives only in the request's auth flow, never in an exception, a log line or a repr.

```text
DebituraError                    base of every error here              retryable
├── ConfigurationError           unsafe or unusable settings/values    no
│   └── ReceiverNotConfigured    the webhook receiver has no secret    no
├── RequestValidationError       refused before sending                no
├── CasesNotFound                watched ids the list no longer has    no
├── SignatureError               webhook signature missing or wrong    no
├── EnvelopeError                webhook body is not an envelope       no
├── SecretStoreError             webhook secret cannot be stored       no
├── TransportError               Debitura unreachable or too slow      yes
└── ApiError                     Debitura answered an error status     by status:
    ├── BadRequestError          400                                   no
    ├── AuthenticationError      401                                   no
    ├── PermissionDeniedError    403                                   no
    ├── NotFoundError            404                                   no
    ├── ConflictError            409                                   with an Idempotency-Key
    ├── BusinessRuleError        422                                   no
    ├── RateLimitError           429                                   yes
    └── ServerError              5xx                                   yes
```

``retryable`` is read by the client (whether to send again now, if the request is safe to
replay), by the Airflow layer (``failures.is_transient``: fail the try or fail the task for good)
and by the bulk referral (an outcome's ``retryable``). See :attr:`ApiError.retryable` for the 409.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from debitura_provider.api.models.errors import ApiErrorBody, BusinessError

FieldErrors = dict[str, list[str]]


class DebituraError(Exception):
    """Base of every error this package raises."""

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later, unchanged. Each class answers once."""
        return False


class ConfigurationError(DebituraError, ValueError):
    """Settings or a value that are unsafe or cannot work (say, plain http to a public host, or a
    connection extra that is not a number); the message names the setting."""


class ReceiverNotConfigured(ConfigurationError):
    """The webhook receiver's connection or its ``webhook_secret`` is missing; never holds the secret."""


class SignatureError(DebituraError):
    """A delivery whose signature is missing, malformed, stale, from the future, or wrong."""


class EnvelopeError(DebituraError):
    """A delivery whose body is not a Debitura event envelope."""


class SecretStoreError(DebituraError):
    """The webhook secret cannot be stored where the receiver will read it; never carries the secret."""


class RequestValidationError(DebituraError, ValueError):
    """A request was refused before sending because a field is invalid; nothing reached Debitura."""

    def __init__(self, what: str, field_errors: FieldErrors) -> None:
        self.what = what
        self.field_errors = field_errors
        lines = "; ".join(f"{field}: {' / '.join(msgs)}" for field, msgs in field_errors.items())
        super().__init__(f"Invalid {what} (nothing was sent): {lines}")

    @classmethod
    def from_pydantic(cls, what: str, error: ValidationError) -> RequestValidationError:
        return cls(what, field_errors_of(error))


def field_errors_of(error: ValidationError) -> FieldErrors:
    """The API's 400 field map (``{"debtor.email": ["..."]}``) for a pydantic error, with wire names."""
    errors: FieldErrors = {}
    for item in error.errors(include_url=False):
        field = ".".join(to_camel(part) if isinstance(part, str) else str(part) for part in item["loc"]) or "body"
        message = str(item["msg"]).removeprefix("Value error, ")
        errors.setdefault(field, []).append(message)
    return errors


class CasesNotFound(DebituraError):
    """Watched cases that the list endpoint no longer returns (wrong id, another partner's, or deleted)."""

    def __init__(self, case_ids: Sequence[str]) -> None:
        self.case_ids = list(case_ids)
        shown = ", ".join(self.case_ids[:10]) + (" ..." if len(self.case_ids) > 10 else "")
        super().__init__(f"{len(self.case_ids)} watched case(s) not found among this partner's managed cases: {shown}")


class TransportError(DebituraError):
    """Debitura could not be reached, or did not answer in time."""

    @property
    def retryable(self) -> bool:
        return True

    def __init__(self, method: str, path: str, cause: httpx.TransportError) -> None:
        self.method = method
        self.path = path
        super().__init__(
            f"{method} {path}: {type(cause).__name__} talking to Debitura. "
            "It is retried where safe; if it persists, check the base URL and network."
        )


class ApiError(DebituraError):
    """Debitura answered with an error status. Carries the status, business errors and field errors."""

    hint = "See the business errors for what to change."

    def __init__(
        self,
        *,
        status_code: int,
        method: str,
        path: str,
        error: str | None = None,
        message: str | None = None,
        business_errors: Sequence[BusinessError] = (),
        field_errors: FieldErrors | None = None,
        retry_after: float | None = None,
        idempotency_key_sent: bool = False,
    ) -> None:
        self.status_code = status_code
        self.method = method
        self.path = path
        self.error = error
        self.message = message
        self.business_errors = list(business_errors)
        self.field_errors = field_errors or {}
        self.retry_after = retry_after
        self.idempotency_key_sent = idempotency_key_sent
        super().__init__(self._describe())

    @property
    def retryable(self) -> bool:
        """5xx and 429 pass. A 409 passes only for a request that carried an ``Idempotency-Key``.

        Debitura answers 409 for four things: the same key is still being processed ("retry after
        the indicated delay"), a payment change would reopen a Paid case, a fee change needs its
        price change confirmed, a file goes to a Merged case. Only the first passes on its own; it
        is also the only one sent with a key (creating cases, payments, chats), and a retry with the
        same key returns the first request's answer. The others need a different request, so
        retrying them would only repeat the refusal.
        """
        status = self.status_code
        return status >= 500 or status == 429 or (status == 409 and self.idempotency_key_sent)

    @property
    def error_types(self) -> list[str]:
        """The ``businessErrors[].type`` values, e.g. ``["NoPartnerAvailable"]``."""
        return [b.type for b in self.business_errors if b.type]

    def _describe(self) -> str:
        parts = [f"Debitura answered {self.status_code} to {self.method} {self.path}"]
        detail = self.message or self.error
        if detail:
            parts.append(f": {detail}")
        for b in self.business_errors:
            parts.append(f" [{b.type}] {b.message or ''}".rstrip())
            if b.solution_url:
                parts.append(f" (see {b.solution_url})")
        if self.field_errors:
            fields = "; ".join(f"{f}: {' / '.join(m)}" for f, m in self.field_errors.items())
            parts.append(f" Field errors: {fields}.")
        parts.append(f" {self.hint}")
        return "".join(parts)


class BadRequestError(ApiError):
    hint = "Fix the fields named above and send again."


class AuthenticationError(ApiError):
    hint = "Check that the connection's password holds a current API key from the partner portal."


class PermissionDeniedError(ApiError):
    hint = "The key is valid but its partner may not do this; managing partners cannot act on production cases."


class NotFoundError(ApiError):
    hint = "Check the id; a case is visible only to its managing and its collection partner."


class ConflictError(ApiError):
    hint = "The same request is still being processed, or the change conflicts with the case's state."


class BusinessRuleError(ApiError):
    hint = "Debitura refused this on a business rule; the solution URL says how to resolve it."


class RateLimitError(ApiError):
    hint = "The API key's rate budget is spent; wait retryAfter seconds."


class ServerError(ApiError):
    hint = "Debitura failed; it is retried with backoff where safe."


_BY_STATUS: Mapping[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BusinessRuleError,
    429: RateLimitError,
}


def error_from_response(
    response: httpx.Response, method: str, path: str, *, idempotency_key_sent: bool = False
) -> ApiError:
    """Read any of Debitura's error shapes (ApiErrorResponseDto, field map, ProblemDetails, 429 body)."""
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    body = _json_object(response)
    parsed = ApiErrorBody.model_validate(body) if body else ApiErrorBody()
    field_errors = _field_map(body) or _field_map_of_business_errors(parsed.business_errors)
    message = parsed.message or _text(body.get("detail")) or _text(body.get("title"))
    retry_after = _retry_after(body, response.headers)
    return cls(
        status_code=status,
        method=method,
        path=path,
        error=parsed.error,
        message=message,
        business_errors=parsed.business_errors,
        field_errors=field_errors,
        retry_after=retry_after,
        idempotency_key_sent=idempotency_key_sent,
    )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _field_map(body: Mapping[str, Any]) -> FieldErrors:
    # Either ValidationProblemDetails ({"errors": {...}}) or a bare {"field": ["msg"]} map.
    nested = body.get("errors")
    source: Mapping[str, Any] = nested if isinstance(nested, dict) else body
    return {
        str(k): [str(m) for m in v]
        for k, v in source.items()
        if isinstance(v, list) and k != "businessErrors" and all(isinstance(m, str) for m in v)
    }


def _field_map_of_business_errors(errors: Sequence[BusinessError]) -> FieldErrors:
    # A spec-conformant 400 (ApiErrorResponseDto allows no extra keys) carries one
    # ``ValidationError`` business error per message, written "field: message".
    fields: FieldErrors = {}
    for error in errors:
        field, sep, message = (error.message or "").partition(": ")
        if error.type == "ValidationError" and sep and field and " " not in field:
            fields.setdefault(field, []).append(message)
    return fields


def _retry_after(body: Mapping[str, Any], headers: httpx.Headers) -> float | None:
    value = body.get("retryAfter")
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    header = headers.get("Retry-After")
    if header is not None:
        try:
            return max(float(header), 0.0)
        except ValueError:
            return None
    return None
