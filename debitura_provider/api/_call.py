"""``Call``: one request described as data, so sync and async clients share every endpoint definition."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from debitura_provider.api.errors import RequestValidationError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_REPLAY_SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


@dataclass(frozen=True)
class Call(Generic[T]):
    """A validated request and the parser for its success response.

    ``json`` is the body in JSON types, amounts as ``Decimal``; the client writes it with
    :func:`encode_json`, so amounts go out as exact numbers.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    data: Mapping[str, str] | None = None
    idempotency_key: str | None = field(default=None, repr=False)

    @property
    def replay_safe(self) -> bool:
        """Whether sending this twice has the effect of sending it once, so a lost answer may be retried."""
        return self.method in _REPLAY_SAFE_METHODS or self.idempotency_key is not None


def parse_model(model: type[M], data: M | Mapping[str, Any], what: str) -> M:
    """Accept a model or a plain mapping; refuse invalid input with the fields named, before any I/O."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError.from_pydantic(what, exc) from None


def uuid_arg(value: UUID | str, name: str) -> UUID:
    """A path or query id; a malformed one is refused here rather than answered 400 by the API."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise RequestValidationError("request", {name: [f"{value!r} is not a UUID"]}) from None


def derive_idempotency_key(path: str, body: Any) -> str:
    """A key fixed by the request itself: the same referral always carries the same key.

    So a retry, a task retry, or a re-run of the same extract cannot create a second case.
    """
    canonical = _encode(body, canonical=True)
    digest = hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()
    return f"airflow-debitura-{digest}"


def check_idempotency_key(key: str) -> str:
    if not key or len(key) > 255:
        raise RequestValidationError("request", {"Idempotency-Key": ["must be 1 to 255 characters"]})
    return key


def encode_json(body: Any) -> bytes:
    """A request body as JSON, amounts (``Decimal``) written as exact numbers (``12.50``).

    ``json.dumps`` cannot write a Decimal as a number, and a float would round it. Separators and
    escaping are those httpx uses for ``json=``.
    """
    return _encode(body, canonical=False).encode()


def _encode(value: Any, *, canonical: bool) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        if not canonical:
            return format(value, "f")
        # As Python wrote the float this amount was before amounts became Decimal (12.5, 100.0;
        # the same for any amount below 10**16), so a body derives the Idempotency-Key it always did.
        text = format(value.normalize(), "f")
        return text if "." in text else f"{text}.0"
    if isinstance(value, Mapping):
        items = sorted(value.items()) if canonical else list(value.items())
        pairs = (f"{json.dumps(str(k), ensure_ascii=False)}:{_encode(v, canonical=canonical)}" for k, v in items)
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item, canonical=canonical) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _exact_json(content: bytes) -> Any:
    # pydantic reads a JSON number as a float before it becomes a Decimal (pydantic-core #1688),
    # so the body is decoded here with every non-integer number kept as its exact Decimal text.
    return json.loads(content, parse_float=Decimal)


def _parser(adapter: TypeAdapter[T]) -> Callable[[httpx.Response], T]:
    def parse(response: httpx.Response) -> T:
        try:
            data = _exact_json(response.content)
        except ValueError:  # not JSON: let pydantic say so, as it always has
            return adapter.validate_json(response.content)
        return adapter.validate_python(data)

    return parse


def one(model: type[M]) -> Callable[[httpx.Response], M]:
    return _parser(TypeAdapter(model))


def many(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    return _parser(TypeAdapter(list[model]))  # type: ignore[valid-type]


def keyed(model: type[M]) -> Callable[[httpx.Response], dict[str, M]]:
    return _parser(TypeAdapter(dict[str, model]))  # type: ignore[valid-type]


def nothing(_: httpx.Response) -> None:
    return None


def repeated(name: str, values: Iterable[str] | None) -> tuple[tuple[str, str], ...]:
    """An array query parameter, sent as repeated keys (``Ids=a&Ids=b``), the OpenAPI default."""
    return tuple((name, v) for v in values or ())
