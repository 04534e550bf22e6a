"""Error answers in the shapes the spec declares, and the handlers that make sure nothing else escapes.

* ``ApiErrorResponseDto`` ``{error, message, businessErrors[]}`` for 400/404/409/422; the spec gives it
  ``additionalProperties: false``, so field errors travel as ``businessErrors`` of type
  ``ValidationError`` whose message starts with the field's wire name (``"debtor.email: ..."``).
* ``BusinessErrorResponseApiDTO`` ``{businessErrors[]}`` for the 422s of ``POST /managed-cases``.
* ``ProblemDetails`` for 401.
* A 500 carries ``businessErrors`` only and never a traceback; the exception is logged here instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from debitura_provider.api.errors import FieldErrors, field_errors_of

log = logging.getLogger("debitura_provider.sandbox")

VALIDATION_ERROR = "ValidationError"


class ApiProblem(Exception):
    """An error answer; raised anywhere in a handler, turned into its response by :func:`install`."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def business_error(kind: str, message: str, solution_url: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if solution_url:
        error["solutionUrl"] = solution_url
    return error


def api_error(
    status: int, message: str, *, error: str | None = None, business: Sequence[Mapping[str, Any]] = ()
) -> ApiProblem:
    """An ``ApiErrorResponseDto`` answer."""
    return ApiProblem(status, {"error": error or message, "message": message, "businessErrors": list(business)})


def bad_request(message: str, kind: str = "InvalidRequest") -> ApiProblem:
    return api_error(400, message, business=[business_error(kind, message)])


def not_found(message: str) -> ApiProblem:
    return api_error(404, message, error="Not Found", business=[business_error("NotFound", message)])


def conflict(message: str, kind: str) -> ApiProblem:
    return api_error(409, message, business=[business_error(kind, message)])


def unprocessable(message: str, kind: str) -> ApiProblem:
    return api_error(422, message, business=[business_error(kind, message)])


def business_rule(message: str, kind: str, solution_url: str | None = None) -> ApiProblem:
    """A ``BusinessErrorResponseApiDTO`` 422, as ``POST /managed-cases`` declares it."""
    return ApiProblem(422, {"businessErrors": [business_error(kind, message, solution_url)]})


def invalid_fields(errors: FieldErrors) -> ApiProblem:
    """The 400 for field errors: one ``ValidationError`` business error per message, field first."""
    lines = [f"{field}: {message}" for field, messages in errors.items() for message in messages]
    return api_error(
        400,
        "One or more fields are invalid: " + "; ".join(lines),
        error="Validation failed",
        business=[business_error(VALIDATION_ERROR, line) for line in lines],
    )


def invalid_field(field: str, message: str) -> ApiProblem:
    return invalid_fields({field: [message]})


def from_pydantic(error: ValidationError, prefix: str = "") -> ApiProblem:
    errors = field_errors_of(error)
    return invalid_fields({f"{prefix}{k}" if prefix else k: v for k, v in errors.items()})


def unauthorized(instance: str) -> JSONResponse:
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.2",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Missing or invalid API key: send a valid key in the XApiKey header.",
        "instance": instance,
    }
    return JSONResponse(body, status_code=401)


class Unauthorized(Exception):
    """No key, or a key no partner owns."""


def _parameter_errors(exc: RequestValidationError) -> FieldErrors:
    errors: FieldErrors = {}
    for item in exc.errors():
        loc = [str(part) for part in item.get("loc", ()) if part not in ("path", "query", "header", "body")]
        field = ".".join(loc) or "request"
        errors.setdefault(field, []).append(str(item.get("msg", "invalid value")).removeprefix("Value error, "))
    return errors


def install(app: FastAPI) -> None:
    """Register handlers so every error leaves as one of the spec's bodies."""

    async def problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return exc.response()

    async def parameters(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return invalid_fields(_parameter_errors(exc)).response()

    async def unauthenticated(request: Request, _: Exception) -> JSONResponse:
        return unauthorized(request.url.path)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"No such endpoint: {request.method} {request.url.path}"
            return not_found(message).response()
        message = str(exc.detail)
        return JSONResponse({"error": message, "message": message, "businessErrors": []}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("Sandbox error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "The sandbox failed to handle this request; the error is in its log."
        return JSONResponse({"businessErrors": [business_error("InternalServerError", message)]}, status_code=500)

    app.add_exception_handler(ApiProblem, problem)
    app.add_exception_handler(RequestValidationError, parameters)
    app.add_exception_handler(Unauthorized, unauthenticated)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crash)
