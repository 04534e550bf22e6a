"""Base classes that fix the wire conventions once: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, TypeAdapter
from pydantic.alias_generators import to_camel

from debitura_provider.api import validation
from debitura_provider.api.money import as_text


class ApiModel(BaseModel):
    """A response body: unknown fields are tolerated so that additive API changes never break a client."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_body(self) -> dict[str, Any]:
        """The JSON body Debitura expects: camelCase keys, unset optionals left out, JSON types except
        that amounts stay :class:`~decimal.Decimal`, which the client writes as exact JSON numbers."""
        body: dict[str, Any] = _keep_decimals(
            self.model_dump(mode="json", by_alias=True, exclude_none=True),
            self.model_dump(by_alias=True, exclude_none=True),
        )
        return body

    def to_json_types(self) -> dict[str, Any]:
        """:meth:`to_body` in plain JSON types, amounts as ``float``, for servers that encode with
        ``json.dumps`` (the sandbox). The client never sends this form; it sends :meth:`to_body`.
        Not :func:`to_wire`, which writes amounts as exact decimal strings for XCom."""
        body: dict[str, Any] = _floats(self.to_body())
        return body


def to_wire(model: BaseModel) -> dict[str, Any]:
    """A model as the JSON-safe camelCase dict Airflow passes downstream (XCom, trigger events).

    Amounts come out as decimal strings (``"1234.50"``): exact, and JSON-safe for any serializer.
    """
    return model.model_dump(mode="json", by_alias=True)


def _keep_decimals(json_form: Any, python_form: Any) -> Any:
    # The two dumps have the same shape; take the Decimal wherever the Python dump has one.
    if isinstance(python_form, Decimal):
        return python_form
    if isinstance(json_form, dict) and isinstance(python_form, Mapping):
        return {key: _keep_decimals(value, python_form[key]) for key, value in json_form.items()}
    if isinstance(json_form, list) and isinstance(python_form, list | tuple):
        return [_keep_decimals(j, p) for j, p in zip(json_form, python_form, strict=True)]
    return json_form


def _floats(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats(item) for item in value]
    return value


class RequestModel(ApiModel):
    """A request body: unknown fields are refused, because the API silently ignores them.

    A misspelt field would otherwise change what is sent without anyone noticing
    (``isTestCase`` instead of ``isTest`` creates a production case).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _as_utc(value: datetime) -> datetime:
    # Debitura serialises some timestamps without a zone; they are UTC (API-NOTES §3.5).
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]
"""A response timestamp; naive values are read as UTC."""

_DATETIME = TypeAdapter(datetime)


def _date_only(value: Any) -> Any:
    # The spec types these fields date-time but asks for "date only without time component";
    # a full timestamp is accepted and cut to its date, as ASP.NET binding does.
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str) and len(value) > 10 and value[10:11] in ("T", " "):
        return _DATETIME.validate_python(value).date()
    return value


WireDate = Annotated[date, BeforeValidator(_date_only)]
"""A request date, sent as ``YYYY-MM-DD``."""


def _exact_number(value: Any) -> Any:
    # A float is taken at its shortest decimal text (0.1 -> Decimal("0.1")): the number its writer meant.
    value = validation.not_a_boolean(value)
    return Decimal(repr(value)) if isinstance(value, float) else value


Money = Annotated[
    Decimal,
    BeforeValidator(_exact_number),
    Field(allow_inf_nan=False),
    PlainSerializer(as_text, return_type=str, when_used="json"),
]
"""An amount: exact, read from the JSON number's text; in JSON mode written as a digit string
(:func:`~debitura_provider.api.money.as_text`: ``"1234.50"``), which is what :func:`to_wire` hands to Airflow."""
