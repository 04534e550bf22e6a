"""Error answers in the shapes the spec declares, built where a rule is broken and sent by the HTTP edge.

* ``ApiErrorResponseDto`` ``{error, message, businessErrors[]}`` for business-rule 400s and for
  404/409/422.
* Field errors (a body or parameter that does not validate): ``ValidationProblemDetails``
  ``{type, title, status: 400, errors: {"debtor.email": ["..."]}}``, the field map of API-NOTES §7.1.3
  in the envelope ASP.NET Core's model validation produces (docs/sandbox.md says why).
* ``BusinessErrorResponseApiDTO`` ``{businessErrors[]}`` for the 422s of ``POST /managed-cases``.

:class:`ApiProblem` is a plain exception: the domain raises it without knowing about HTTP frameworks,
and :mod:`debitura_provider.sandbox.edge.errors` turns it into a response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from debitura_provider.api.errors import FieldErrors

VALIDATION_PROBLEM_TYPE = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
VALIDATION_PROBLEM_TITLE = "One or more validation errors occurred."


class ApiProblem(Exception):
    """An error answer; raised anywhere in a handler, turned into its response by the edge's handlers."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})


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
    """The 400 for field errors: the documented field map (API-NOTES §7.1.3) in ASP.NET's
    ``ValidationProblemDetails`` envelope, the answer of model validation in an ASP.NET Core API."""
    body = {
        "type": VALIDATION_PROBLEM_TYPE,
        "title": VALIDATION_PROBLEM_TITLE,
        "status": 400,
        "errors": {field: list(messages) for field, messages in errors.items()},
    }
    return ApiProblem(400, body)


def invalid_field(field: str, message: str) -> ApiProblem:
    return invalid_fields({field: [message]})
