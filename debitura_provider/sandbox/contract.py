"""The strict oracle: every request body the sandbox receives and every answer it sends, checked against
the JSON schemas of Debitura's own OpenAPI spec (``--strict-spec PATH``, ``SandboxConfig(strict_spec=...)``).

It shares nothing with the client's models: the schemas come from the spec file, and they are checked
with ``jsonschema``. A request that breaks its operation's schema but was accepted (2xx), or an answer
that breaks the schema of its status, is a :class:`Violation`. The edge middleware
(:mod:`debitura_provider.sandbox.edge.strict`) records it and answers 418 instead, so that the test
that caused it fails there, and the tests' fixtures fail on any recorded violation.

Where Debitura's documented behaviour goes beyond the spec, the oracle knows the exception by name
(:data:`EXCEPTIONS`): an answer matching one of them is not a violation.

The spec is OpenAPI 3.0: ``nullable`` is turned into JSON Schema's ``null`` type before checking.
Nothing here imports FastAPI.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

SPEC_ENV = "DEBITURA_OPENAPI_SPEC"
DEFAULT_SPEC = Path("..") / "shared" / "debitura" / "collection-partner-api.json"
METHODS = ("get", "post", "put", "delete", "patch")
JSON_TYPES = ("application/json", "text/json", "application/json-patch+json")
PROBLEM_DETAILS = "#/components/schemas/Microsoft.AspNetCore.Mvc.ProblemDetails"
API_ERROR = "#/components/schemas/Debitura.Web.ExternalApi.Contracts.V1.Errors.ApiErrorResponseDto"
BUSINESS_ERROR = "#/components/schemas/Debitura.Web.ExternalApi.Contracts.V1.Cases.BusinessErrorResponseApiDTO"
VIOLATION_TYPE = "urn:debitura-sandbox:contract-violation"
VIOLATION_STATUS = 418
"""The status of a replaced answer: no API operation uses it, and no client retries it."""


def spec_path(given: str | Path | None = None) -> Path:
    """The spec to check against: ``given``, else ``$DEBITURA_OPENAPI_SPEC``, else ``../shared/debitura/``."""
    return Path(given or os.environ.get(SPEC_ENV) or DEFAULT_SPEC)


@dataclass(frozen=True)
class Documented:
    """Behaviour Debitura documents beyond the spec: which answers, the body schema they carry, and why."""

    name: str
    applies: Callable[[str, str, int], bool]
    """(method, spec path, status) -> whether this exception covers the answer."""
    schema: dict[str, Any] | None
    """The body's schema (a ``$ref`` into the spec or a small schema of its own); None: no body."""
    source: str


def _rate_limit_body() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error", "message", "retryAfter"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "retryAfter": {"type": "number"}},
        "additionalProperties": False,
    }


def _validation_problem() -> dict[str, Any]:
    return {
        "allOf": [{"$ref": PROBLEM_DETAILS}],
        "type": "object",
        "required": ["type", "title", "status", "errors"],
        "properties": {
            "status": {"enum": [400]},
            "errors": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            },
        },
    }


IDEMPOTENT = ("/managed-cases", "/cases/{id}/payments", "/ingestion-jobs", "/cases/{id}/chats")
"""The operations that take an ``Idempotency-Key`` (API-NOTES §7.3)."""


def _idempotent(method: str, path: str) -> bool:
    return method == "post" and path in IDEMPOTENT


EXCEPTIONS: tuple[Documented, ...] = (
    Documented(
        "unauthorized-401",
        lambda method, path, status: status == 401 and not path.startswith("/webhooks"),
        {"$ref": PROBLEM_DETAILS},
        "API-NOTES §7.1.4: a missing or unknown XApiKey is a 401 ProblemDetails; the spec declares the 401 "
        "on /me and /users only, but every operation needs the key.",
    ),
    Documented(
        "unauthorized-webhooks",
        lambda method, path, status: status == 401 and path.startswith("/webhooks"),
        None,
        "spec: the 401 of /webhooks* has no content; the two /webhooks/events operations do not declare it.",
    ),
    Documented(
        "rate-limited-429",
        lambda method, path, status: status == 429,
        _rate_limit_body(),
        "API-NOTES §1.4: 429 {error, message, retryAfter} on every operation; the spec declares no 429.",
    ),
    Documented(
        "field-validation-400",
        lambda method, path, status: status == 400,
        _validation_problem(),
        "API-NOTES §7.1.3: field validation answers a field map, in ASP.NET's ValidationProblemDetails "
        "envelope; a ProblemDetails (the spec's schema) with an errors map.",
    ),
    Documented(
        "idempotency-in-progress-409",
        lambda method, path, status: status == 409 and _idempotent(method, path),
        {"$ref": API_ERROR},
        "API-NOTES §7.3: the same Idempotency-Key while the first request is still processing is a 409.",
    ),
    Documented(
        "idempotency-conflict-422",
        lambda method, path, status: status == 422 and _idempotent(method, path),
        {"oneOf": [{"$ref": API_ERROR}, {"$ref": BUSINESS_ERROR}]},
        "API-NOTES §7.3: the same Idempotency-Key with another body is a 422 IdempotencyConflict "
        "(POST /ingestion-jobs and the chats declare no 422).",
    ),
    Documented(
        "payment-invoiced-422",
        lambda method, path, status: status == 422 and path.startswith("/managed-cases/{id}/payments"),
        {"$ref": API_ERROR},
        "spec text of PUT/DELETE /managed-cases/{id}/payments/{paymentId}: an invoiced payment is frozen (422).",
    ),
    Documented(
        "not-found-404",
        lambda method, path, status: status == 404,
        {"$ref": API_ERROR},
        "API-NOTES §7.2: an unknown id is a 404 ApiErrorResponseDto; some operations do not declare it.",
    ),
)


@dataclass(frozen=True)
class Violation:
    """One place where the sandbox, or a client talking to it, left the spec."""

    method: str
    path: str
    status: int
    where: str  # "request" or "response"
    errors: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} -> {self.status}: {self.where} breaks the spec: " + "; ".join(
            self.errors
        )


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    pattern: re.Pattern[str]
    request: dict[str, Any] | None
    responses: dict[str, dict[str, Any] | None]
    """Status -> body schema (None: no body)."""


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema (``null`` allowed), everywhere in a schema."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    if not node.get("nullable"):
        return converted
    if "$ref" in converted or "allOf" in converted or "oneOf" in converted or "anyOf" in converted:
        return {"anyOf": [converted, {"type": "null"}]}
    if "type" in converted:
        converted["type"] = [converted["type"], "null"]
    if "enum" in converted:
        converted["enum"] = [*converted["enum"], None]
    return converted


def _json_schema(content: Mapping[str, Any] | None) -> dict[str, Any] | None:
    for media in JSON_TYPES:
        if content and media in content:
            schema: dict[str, Any] = content[media].get("schema", {})
            return schema
    return None


class Oracle:
    """The spec's operations and their schemas; checks one exchange at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            spec = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the OpenAPI spec at {self.path}: {exc}") from None
        self._components = _nullable(spec.get("components", {}))
        self.operations: list[Operation] = []
        for template, item in spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$")
            for method in METHODS:
                op = item.get(method)
                if op is None:
                    continue
                request = _json_schema(op.get("requestBody", {}).get("content"))
                responses = {code: _json_schema(r.get("content")) for code, r in op["responses"].items()}
                self.operations.append(Operation(method, template, pattern, request, responses))
        # Fixed paths first: /cases/by-partner-reference must not be taken for /cases/{id}.
        self.operations.sort(key=lambda o: o.path.count("{"))
        self._checked = cache(self._validator)

    def operation(self, method: str, path: str) -> Operation | None:
        method = method.lower()
        return next((o for o in self.operations if o.method == method and o.pattern.match(path)), None)

    def _validator(self, schema_json: str) -> Draft4Validator:
        schema = {**_nullable(json.loads(schema_json)), "components": self._components}
        return Draft4Validator(schema, format_checker=FormatChecker())

    def _errors(self, schema: dict[str, Any], document: Any) -> list[str]:
        validator = self._checked(json.dumps(schema, sort_keys=True))
        found = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        return [f"{'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:300]}" for e in found[:10]]

    def check_request(self, op: Operation, content_type: str | None, body: bytes) -> list[str]:
        """The request body's problems (empty when it fits, or when the operation takes no JSON body)."""
        if op.request is None or not body.strip() or not _is_json(content_type):
            return []
        try:
            document = json.loads(body)
        except ValueError:
            return []  # not JSON at all: the sandbox refuses it with a 400 of its own
        return self._errors(op.request, document)

    def check_response(self, op: Operation, status: int, content_type: str | None, body: bytes) -> list[str]:
        """The answer's problems: an undeclared status, or a body that breaks its schema."""
        declared = str(status) in op.responses
        candidates: list[tuple[str, dict[str, Any] | None]] = []
        if declared:
            candidates.append(("spec", op.responses[str(status)]))
        candidates += [(e.name, e.schema) for e in EXCEPTIONS if e.applies(op.method, op.path, status)]
        if not candidates:
            return [f"status {status} is neither declared for this operation nor a documented exception"]
        problems: list[str] = []
        for name, schema in candidates:
            found = self._body_errors(schema, content_type, body)
            if not found:
                return []
            problems.append(f"[{name}] " + "; ".join(found))
        return problems

    def _body_errors(self, schema: dict[str, Any] | None, content_type: str | None, body: bytes) -> list[str]:
        if schema is None:
            return [] if not body else [f"a body where none is documented: {body[:100]!r}"]
        if not _is_json(content_type):
            return [f"content type {content_type!r} where JSON is documented"]
        try:
            document = json.loads(body)
        except ValueError:
            return ["the body is not JSON"]
        return self._errors(schema, document)


def _is_json(content_type: str | None) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json"))


@dataclass
class Findings:
    """What the strict oracle found during one sandbox run: every violation, and how many exchanges it checked."""

    violations: list[Violation] = field(default_factory=list)
    checked: int = 0
