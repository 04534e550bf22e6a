"""Referring a whole extract in one go: validate every record, then create the valid ones concurrently.

Nothing invalid is sent and no record can fail the batch: each gets its own :class:`Outcome`.
Creation goes through :class:`~debitura_provider.api.client.AsyncDebituraClient`, so every request
takes a slot in the API key's rate budget and carries the body-derived ``Idempotency-Key``: running
the same extract again returns the cases already created instead of creating new ones.

Debitura replays the first answer to a repeated key verbatim, status and body alike (200 both times, no
replay header: API-NOTES §7.3, the spec's ``Idempotency-Key`` parameter), so nothing in an answer says
it is a replay. What does: a replay carries the case id the first answer gave. A caller that holds the
case ids of earlier referrals (a ledger) passes them as ``known``, and a record answered with its known
case is ``existing``; every other case returned is ``created``.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import ValidationError

from debitura_provider.api import endpoints
from debitura_provider.api._call import Call
from debitura_provider.api.client import AsyncDebituraClient
from debitura_provider.api.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    BusinessRuleError,
    DebituraError,
    FieldErrors,
    PermissionDeniedError,
    RequestValidationError,
    field_errors_of,
)
from debitura_provider.api.models import Case, CreateManagedCaseRequest
from debitura_provider.api.money import as_text


class Status(str, Enum):
    CREATED = "created"
    EXISTING = "existing"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """What became of one record. ``retryable`` says whether sending it again later may succeed."""

    record_key: Any
    status: Status
    case: Case | None = None
    reason: str | None = None
    field_errors: FieldErrors | None = None
    retryable: bool = False

    def to_json(self) -> dict[str, Any]:
        case = self.case
        return {
            "recordKey": self.record_key,
            "status": self.status.value,
            "caseId": str(case.id) if case else None,
            "reference": case.reference if case else None,
            "lifecycle": case.lifecycle if case else None,
            "remainder": as_text(case.remainder) if case else None,
            "currency": case.currency if case else None,
            "reason": self.reason,
            "fieldErrors": self.field_errors,
            "retryable": self.retryable,
        }


@dataclass(frozen=True)
class Referral:
    """A record that passed validation, with the request built once (body and Idempotency-Key)."""

    index: int
    record_key: Any
    request: CreateManagedCaseRequest
    call: Call[Case]


def prepare(
    records: Sequence[Any],
    *,
    record_key: str = "record_id",
    overrides: Mapping[str, Any] | None = None,
) -> tuple[list[Referral], dict[int, Outcome]]:
    """Validate every record (and drop in-batch duplicates) before anything is sent.

    Each record is a ``CreateManagedCaseRequest``-shaped mapping plus ``record_key``, which is
    removed from the body. ``overrides`` (wire names, e.g. ``{"isTest": True}``) replace fields in
    every record. Returns the sendable records and the rejections, by input position.
    """
    sendable: list[Referral] = []
    rejected: dict[int, Outcome] = {}
    first_by_key: dict[str, Any] = {}
    first_by_body: dict[str, Any] = {}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            reason = f"record is not a mapping (got {type(record).__name__})"
            rejected[index] = Outcome(None, Status.REJECTED, reason=reason)
            continue
        key = _json_key(record.get(record_key))
        shown = key if key is not None else f"#{index}"
        body = _with_overrides({k: v for k, v in record.items() if k != record_key}, overrides or {})
        try:
            request = CreateManagedCaseRequest.model_validate(body)
        except ValidationError as exc:
            errors = field_errors_of(exc)
            rejected[index] = Outcome(key, Status.REJECTED, reason=_describe(errors), field_errors=errors)
            continue
        call = endpoints.create_managed_case(request)
        canonical = call.idempotency_key or ""  # derived from the canonical body: equal bodies, equal keys
        identity = json.dumps(key)
        duplicate_of = first_by_key.get(identity) if key is not None else None
        if duplicate_of is None:
            duplicate_of = first_by_body.get(canonical)
        if duplicate_of is not None:
            rejected[index] = Outcome(key, Status.REJECTED, reason=f"duplicate of {duplicate_of} in this batch")
            continue
        if key is not None:
            first_by_key[identity] = shown
        first_by_body[canonical] = shown
        sendable.append(Referral(index, key, request, call))
    return sendable, rejected


async def refer(
    client: AsyncDebituraClient,
    records: Sequence[Any],
    *,
    record_key: str = "record_id",
    max_concurrency: int = 8,
    overrides: Mapping[str, Any] | None = None,
    known: Mapping[Any, str] | None = None,
) -> list[Outcome]:
    """One outcome per record, in input order; at most ``max_concurrency`` requests in flight.

    ``known`` maps record keys to the case ids earlier referrals got for them: a record answered
    with its known case is ``existing`` (the module doc says why ids, not times, tell).

    An authentication or permission error stops further sending (every remaining record would
    get the same answer); those records end ``failed`` and not retryable.
    """
    if max_concurrency < 1:
        raise RequestValidationError("referral", {"max_concurrency": ["must be 1 or more"]})
    sendable, outcomes = prepare(records, record_key=record_key, overrides=overrides)
    queue = deque(sendable)
    stop: list[str] = []

    async def worker() -> None:
        while queue:
            referral = queue.popleft()
            if stop:
                outcomes[referral.index] = Outcome(
                    referral.record_key, Status.FAILED, reason=f"not sent: {stop[0]}", retryable=False
                )
                continue
            outcome, fatal = await _create(client, referral, (known or {}).get(referral.record_key))
            if fatal and outcome.reason:
                stop.append(outcome.reason)
            outcomes[referral.index] = outcome

    await asyncio.gather(*(worker() for _ in range(min(max_concurrency, len(sendable)))))
    return [outcomes[i] for i in range(len(records))]


async def _create(client: AsyncDebituraClient, referral: Referral, known_id: str | None) -> tuple[Outcome, bool]:
    """The record's outcome, and whether the error means no other record can succeed either."""
    key = referral.record_key
    try:
        case = await client.send(referral.call)
    except BadRequestError as exc:
        return Outcome(key, Status.REJECTED, reason=_api_reason(exc), field_errors=exc.field_errors or None), False
    except BusinessRuleError as exc:
        return Outcome(key, Status.REJECTED, reason=_api_reason(exc)), False
    except (AuthenticationError, PermissionDeniedError) as exc:
        return Outcome(key, Status.FAILED, reason=_api_reason(exc)), True
    except DebituraError as exc:  # an outage, a 5xx, a 429, a 409 still in flight: the error says if it may pass
        return Outcome(key, Status.FAILED, reason=str(exc), retryable=exc.retryable), False
    replayed = known_id is not None and str(case.id) == str(known_id)
    return Outcome(key, Status.EXISTING if replayed else Status.CREATED, case=case), False


def _api_reason(exc: ApiError) -> str:
    business = "; ".join(f"{b.type}: {b.message}" if b.type else str(b.message) for b in exc.business_errors)
    detail = business or exc.message or exc.error
    if exc.field_errors:
        fields = _describe(exc.field_errors)
        detail = f"{detail}; {fields}" if detail else fields
    return f"Debitura answered {exc.status_code}: {detail or 'no detail given'}"


def _describe(errors: FieldErrors) -> str:
    return "invalid " + "; ".join(f"{name}: {' / '.join(msgs)}" for name, msgs in errors.items())


def _json_key(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _with_overrides(body: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for wire_name, value in overrides.items():
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in wire_name)
        body.pop(snake, None)
        body[wire_name] = value
    return body
