"""FastAPI dependencies: who is calling, the parsed body and list queries.

Request bodies are parsed with the client's own request models, so the client and the sandbox refuse
exactly the same input, and the 400 names the same fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from datetime import date, datetime
from decimal import Decimal
from email.message import Message
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from uuid import UUID

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ValidationError

from debitura_provider.api.models import Lifecycle
from debitura_provider.sandbox.domain import money
from debitura_provider.sandbox.domain.problems import invalid_field, invalid_fields
from debitura_provider.sandbox.domain.queries import SORT_FIELDS, CaseQuery
from debitura_provider.sandbox.domain.runtime import Sandbox
from debitura_provider.sandbox.domain.simulation import Simulator
from debitura_provider.sandbox.domain.state import Partner
from debitura_provider.sandbox.edge.errors import Unauthorized, from_pydantic

M = TypeVar("M", bound=BaseModel)


def get_sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(get_sandbox)]


def get_simulator(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


SimulatorDep = Annotated[Simulator, Depends(get_simulator)]


def authenticate(request: Request, sb: SandboxDep) -> Partner:
    """The partner owning the ``XApiKey``; a missing or unknown key is a 401."""
    partner = sb.store.partner_by_key(request.headers.get("XApiKey"))
    if partner is None:
        raise Unauthorized()
    return partner


Caller = Annotated[Partner, Depends(authenticate)]

CaseId = Annotated[UUID, Path(alias="id")]
PaymentId = Annotated[UUID, Path(alias="paymentId")]
ReopenFlag = Annotated[bool, Query(alias="reopenCaseIfNeeded")]


def is_json(content_type: str | None) -> bool:
    """The JSON media types the spec lists: application/json, text/json, application/*+json."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    kind = message.get_content_type()
    return kind in ("application/json", "text/json") or (kind.startswith("application/") and kind.endswith("+json"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request) -> Any:
    """The request's JSON document; wrong media type, bad encoding or malformed JSON is a 400."""
    if not is_json(request.headers.get("content-type")):
        raise invalid_field("body", "send the body as JSON (Content-Type: application/json)")
    raw = await request.body()
    if not raw.strip():
        raise invalid_field("body", "a request body is required")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid_field("body", f"malformed JSON: {exc}") from None


def json_body(model: type[M]) -> Any:
    """A dependency that parses the body with ``model``; invalid input is a 400 naming each field."""

    async def parse(request: Request) -> M:
        data = await read_json(request)
        if not isinstance(data, dict):
            raise invalid_field("body", "must be a JSON object")
        mistyped = json_types(model, data)
        if mistyped:
            raise invalid_fields(mistyped)
        try:
            parsed = model.model_validate(data)
        except ValidationError as exc:
            raise from_pydantic(exc) from None
        errors = oversized_amounts(parsed)
        if errors:
            raise invalid_fields(errors)
        return parsed

    return Depends(parse)


def _plain(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` as ``X``; anything else as it is."""
    if get_origin(annotation) is Annotated:
        return _plain(get_args(annotation)[0])
    args = [a for a in get_args(annotation) if a is not type(None)]
    return _plain(args[0]) if get_origin(annotation) in (Union, UnionType) and len(args) == 1 else annotation


def json_types(model: type[BaseModel], data: Mapping[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """Values of the wrong JSON type for a boolean, a number or a date/date-time field, by wire name.

    The request models coerce leniently (``0`` to ``False``, ``"12.50"`` to a number, a number to a
    date-time); Debitura's
    JSON binding does not, and neither does the spec's schema.
    """
    errors: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        wire = info.alias or name
        value = data.get(wire)
        if value is None:
            continue
        kind = _plain(info.annotation)
        if kind is bool and not isinstance(value, bool):
            errors[f"{prefix}{wire}"] = ["must be true or false"]
        elif kind is not bool and kind is not Any and isinstance(value, bool):
            errors[f"{prefix}{wire}"] = ["must not be true or false"]
        elif kind in (datetime, date) and not isinstance(value, str):
            errors[f"{prefix}{wire}"] = ["must be a date as a string (ISO 8601)"]
        elif kind in (int, float, Decimal) and isinstance(value, str):
            errors[f"{prefix}{wire}"] = ["must be a JSON number, not text"]
        elif isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(value, dict):
            errors.update(json_types(kind, value, f"{prefix}{wire}."))
        elif get_origin(kind) is list and isinstance(value, list):
            (item,) = get_args(kind) or (Any,)
            if isinstance(item, type) and issubclass(item, BaseModel):
                for index, element in enumerate(value):
                    if isinstance(element, dict):
                        errors.update(json_types(item, element, f"{prefix}{wire}.{index}."))
    return errors


def oversized_amounts(model: BaseModel, prefix: str = "") -> dict[str, list[str]]:
    """Numbers too large for Debitura's money type, by wire name (the spec allows any double)."""
    errors: dict[str, list[str]] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        wire = f"{prefix}{info.alias or name}"
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            where = f"{wire}.{index}" if isinstance(value, list) else wire
            if isinstance(item, float | Decimal) and abs(Decimal(item)) > Decimal(money.MAX_AMOUNT):
                errors[where] = [f"must be at most {money.MAX_AMOUNT:.6g}"]
            elif isinstance(item, BaseModel):
                errors.update(oversized_amounts(item, f"{where}."))
    return errors


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


# --- list queries ---------------------------------------------------------------------------------


def _query_values(request: Request) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        name = key.removesuffix("[]").casefold()
        values.setdefault(name, []).extend(v.strip() for v in value.split(",") if v.strip())
    return values


def _int(
    values: dict[str, list[str]], name: str, default: int, low: int, high: int, errors: dict[str, list[str]], label: str
) -> int:
    given = values.get(name.casefold())
    if not given:
        return default
    try:
        number = int(given[-1])
    except ValueError:
        errors.setdefault(label, []).append(f"{given[-1]!r} is not an integer")
        return default
    if not low <= number <= high:
        errors.setdefault(label, []).append(f"must be {low} to {high}")
    return number


def _uuids(values: dict[str, list[str]], name: str, errors: dict[str, list[str]], label: str) -> set[UUID]:
    found: set[UUID] = set()
    for text in values.get(name, []):
        parsed = parse_uuid(text)
        if parsed is None:
            errors.setdefault(label, []).append(f"{text!r} is not a UUID")
        else:
            found.add(parsed)
    return found


def _bool(text: str) -> bool | None:
    return {"true": True, "false": False, "1": True, "0": False}.get(text.casefold())


def case_query(default_page_size: int = 10) -> Callable[[Request], Coroutine[Any, Any, CaseQuery]]:
    async def parse(request: Request) -> CaseQuery:
        values = _query_values(request)
        errors: dict[str, list[str]] = {}
        query = CaseQuery(
            page=_int(values, "page", 1, 1, 2**31 - 1, errors, "Page"),
            page_size=_int(values, "pagesize", default_page_size, 1, 100, errors, "PageSize"),
            ids=_uuids(values, "ids", errors, "Ids"),
            debtor_ids=_uuids(values, "debtorids", errors, "DebtorIds"),
            division_ids=_uuids(values, "divisionids", errors, "DivisionIds"),
        )
        for text in values.get("statuses", []):
            try:
                query.statuses.add(Lifecycle.parse(text))
            except ValueError as exc:
                errors.setdefault("Statuses", []).append(str(exc))
        for part in values.get("sort", []):
            name, _, direction = part.partition(":")
            key = name.strip().casefold()
            if key in SORT_FIELDS:  # unknown fields are silently ignored, as documented
                query.sort.append((key, direction.strip().casefold() == "desc"))
        include = values.get("includetestcases")
        if include:
            flag = _bool(include[-1])
            if flag is None:
                errors.setdefault("includeTestCases", []).append(f"{include[-1]!r} is not a boolean")
            query.include_test_cases = bool(flag)
        if errors:
            raise invalid_fields(errors)
        return query

    return parse


CaseQueryDep = Annotated[CaseQuery, Depends(case_query())]
