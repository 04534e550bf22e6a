"""The exception handlers that make every error leave as one of the spec's bodies, and the 401.

* :class:`~debitura_provider.sandbox.domain.problems.ApiProblem` raised by a handler or the domain
  becomes its JSON answer.
* Parameter errors FastAPI finds become the 400 field-error body.
* ``ProblemDetails`` for 401 (no body on ``/webhooks*``, as the spec declares it there).
* A 500 carries ``businessErrors`` only and never a traceback; the exception is logged here instead.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from debitura_provider.api.errors import FieldErrors, field_errors_of
from debitura_provider.sandbox.domain.problems import ApiProblem, business_error, invalid_fields, not_found

log = logging.getLogger("debitura_provider.sandbox")


def respond(problem: ApiProblem) -> JSONResponse:
    """The HTTP answer of an :class:`ApiProblem`."""
    return JSONResponse(problem.body, status_code=problem.status, headers=problem.headers)


def from_pydantic(error: ValidationError, prefix: str = "") -> ApiProblem:
    errors = field_errors_of(error)
    return invalid_fields({f"{prefix}{k}" if prefix else k: v for k, v in errors.items()})


def unauthorized(instance: str) -> Response:
    """The 401: a ProblemDetails, except on ``/webhooks*``, where the spec documents a 401 without a body."""
    if instance.startswith("/webhooks"):
        return Response(status_code=401)
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
        return respond(exc)

    async def parameters(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(invalid_fields(_parameter_errors(exc)))

    async def unauthenticated(request: Request, _: Exception) -> Response:
        return unauthorized(request.url.path)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"No such endpoint: {request.method} {request.url.path}"
            return respond(not_found(message))
        message = str(exc.detail)
        return JSONResponse(
            {"error": message, "message": message, "businessErrors": []},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("Sandbox error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "The sandbox failed to handle this request; the error is in its log."
        return JSONResponse({"businessErrors": [business_error("InternalServerError", message)]}, status_code=500)

    app.add_exception_handler(ApiProblem, problem)
    app.add_exception_handler(RequestValidationError, parameters)
    app.add_exception_handler(Unauthorized, unauthenticated)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crash)
