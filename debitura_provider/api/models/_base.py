"""Base classes that fix the wire conventions once: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, TypeAdapter
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """A response body: unknown fields are tolerated so that additive API changes never break a client."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON body Debitura expects: camelCase keys, JSON types, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def to_wire(model: BaseModel) -> dict[str, Any]:
    """A model as the JSON-safe camelCase dict Airflow passes downstream (XCom, trigger events)."""
    return model.model_dump(mode="json", by_alias=True)


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
