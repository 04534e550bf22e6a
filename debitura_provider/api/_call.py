"""``Call``: one request described as data, so sync and async clients share every endpoint definition."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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
    """A validated request and the parser for its success response."""

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
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()
    return f"airflow-debitura-{digest}"


def check_idempotency_key(key: str) -> str:
    if not key or len(key) > 255:
        raise RequestValidationError("request", {"Idempotency-Key": ["must be 1 to 255 characters"]})
    return key


def one(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def many(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
    return lambda response: adapter.validate_json(response.content)


def keyed(model: type[M]) -> Callable[[httpx.Response], dict[str, M]]:
    adapter = TypeAdapter(dict[str, model])  # type: ignore[valid-type]
    return lambda response: adapter.validate_json(response.content)


def nothing(_: httpx.Response) -> None:
    return None


def repeated(name: str, values: Iterable[str] | None) -> tuple[tuple[str, str], ...]:
    """An array query parameter, sent as repeated keys (``Ids=a&Ids=b``), the OpenAPI default."""
    return tuple((name, v) for v in values or ())
